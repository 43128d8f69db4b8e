// State mirroring: in a multi-turn conversation on an iSWA model the head creates and restores context checkpoints
// and saves and restores RAM prompt-cache entries; every worker rank must replay each of those restores on its own
// layers (the patches mirror llama_state_seq_get/set_data_ext). Matching tokens alone could hide a rank that never
// restored, so this reads the evidence in the ranks' own logs (verbose: the server's trace lines on the head, the KV
// cache's restore line on every rank).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startChain, startStock, type Chain } from '../helpers/engine.js';
import { makeFixture } from '../helpers/fixtures.js';
import { complete } from '../helpers/engine.js';
import { compareScenario, PROMPTS, type ScenarioResult } from '../helpers/scenarios.js';

/**
 * A conversation that branches (all on slot 0): P then P + another ending (the sliding window has moved past the
 * fork, so a context checkpoint is restored), an unrelated prompt (P's state goes to the RAM prompt cache), then P with
 * a third ending (P's state comes back from the cache, and a checkpoint again). Stock multiTurn never restores either.
 */
async function branching(port: number): Promise<ScenarioResult> {
  const p = `${PROMPTS[0]} ${PROMPTS[2]} ${PROMPTS[0]}`;
  const ask = (prompt: string) => complete(port, { prompt, n_predict: 8, id_slot: 0 });
  return {
    name: 'branching',
    completions: [await ask(p), await ask(`${p} Then the fox`), await ask(PROMPTS[1]!.repeat(3)), await ask(`${p} Later that day`)],
  };
}

/** Collects every line each rank prints from now on (Proc.log keeps only the last lines, and -lv 5 is chatty). */
function collectLines(chain: Chain): string[][] {
  return chain.ranks.map((r) => {
    const lines: string[] = [];
    for (const stream of [r.proc.child.stdout, r.proc.child.stderr]) {
      let buf = '';
      stream?.on('data', (d: Buffer) => {
        buf += d.toString();
        const parts = buf.split('\n');
        buf = parts.pop()!;
        lines.push(...parts);
      });
    }
    return lines;
  });
}

/** The KV cache's restore of one sequence (llama_kv_cache::state_read_meta, a debug line): cells and sequence. */
const RESTORE = /state_read_meta: cell_count = (\d+), dest_seq_id = (\d+)/;

test('context checkpoints and prompt-cache entries saved and restored on the head are restored on every rank', { timeout: 600_000 }, async () => {
  const model = await makeFixture({ arch: 'gemma3', layers: 6, embd: 128, heads: 4, headsKv: 2, ff: 256, slidingWindow: 16, swaPattern: 3 });
  const stock = await startStock(model);
  const want = await branching(stock.port).finally(() => stock.stop());

  // -lv 5: the head's server logs its checkpoints and prompt-cache steps (trace), every rank its KV restores (debug).
  const chain = await startChain(model, [[0, 2], [2, 3], [3, 6]], ['-lv', '5']);
  const logs = collectLines(chain);
  try {
    compareScenario(want, await branching(chain.port), 'mirrored state');
  } finally {
    await chain.stop();
  }
  const head = logs[0]!;
  const count = (re: RegExp) => head.filter((l) => re.test(l)).length;
  const steps = {
    'checkpoint created': count(/created context checkpoint \d+ of/),
    'checkpoint restored': count(/restored context checkpoint/),
    'prompt saved to the cache': count(/ - saving prompt with length \d+/),
    'prompt restored from the cache': count(/ - found better prompt with/),
  };
  process.stderr.write(`state mirroring, head: ${JSON.stringify(steps)}\n`);
  for (const [what, n] of Object.entries(steps)) assert.ok(n > 0, `the head never logged: ${what} (the scenario no longer exercises it)`);

  // Each restore the head made on its layers, every worker made on its own: same order, same cells, same sequence.
  const restores = logs.map((lines) => lines.map((l) => RESTORE.exec(l)).filter((m) => m !== null).map((m) => `${m[1]} cells -> seq ${m[2]}`));
  process.stderr.write(`state mirroring, restores per rank: ${restores.map((r) => r.length).join(', ')}\n`);
  assert.ok(restores[0]!.length >= steps['checkpoint restored'] + steps['prompt restored from the cache'], `head restores: ${restores[0]!.join('; ')}`);
  for (let r = 1; r < restores.length; r++) assert.deepEqual(restores[r], restores[0], `rank ${r} did not replay the head's restores`);
});
