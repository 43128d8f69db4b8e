// The TUI in a real terminal from a real run: `up` on the real Gemma 3 270M model over two ranks of the real patched
// engine inside tmux; capture-pane shows the node rows (rank, node, layers, phase) and the streamed answer as real
// text, while it runs and on the final screen. tmux's own socket lives in the work dir, so its server is found too.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import getPort from 'get-port';
import { cliPath, linkPatchedServer, realModelOrSkip, stagePortBase, wordsIn } from '../helpers/e2e-run.js';
import { makeWorkDir } from '../helpers/work-dir.js';

const work = makeWorkDir('lr-e2e-tui');
const socket = join(work.path, 'tmux.sock');
const session = 'lre2e';
let llamaServer = '';

const tmux = (...args: string[]) => execFileSync('tmux', ['-S', socket, ...args], { encoding: 'utf8' });
const tmuxIn = (conf: string, ...args: string[]) => execFileSync('tmux', ['-S', socket, '-f', conf, ...args], { encoding: 'utf8' });

before(async () => {
  try {
    execFileSync('tmux', ['-V']);
  } catch {
    throw new Error('tmux is missing (apt-get install tmux; .ci/run installs it)');
  }
  llamaServer = await linkPatchedServer(work);
});
after(() => {
  try {
    execFileSync('tmux', ['-S', socket, 'kill-server'], { stdio: 'ignore' });
  } catch {
    /* not started, or already gone */
  }
  work.remove();
});

async function poll(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return cond();
}

/** The text inside the token box (the round border Ink draws), joined over its lines. */
function tokenBox(screen: string): string {
  const lines = screen.split('\n');
  const top = lines.findIndex((l) => l.trimStart().startsWith('╭'));
  const bottom = lines.findIndex((l, i) => i > top && l.trimStart().startsWith('╰'));
  if (top < 0 || bottom < 0) return '';
  return lines
    .slice(top + 1, bottom)
    .map((l) => l.replace(/^\s*│ ?/, '').replace(/ ?│\s*$/, '').trim())
    .join(' ');
}

/** Starts `up` inside a detached tmux session; `env` entries are set (a value) or unset (undefined) for it. */
async function launch(name: string, model: string, maxTokens: number, env: Record<string, string | undefined>) {
  const conf = join(work.path, 'tmux.conf');
  // Keep the pane after the command exits, so the last frame can be read.
  writeFileSync(conf, 'set -g remain-on-exit on\nset -g history-limit 5000\n');
  const envArgs = Object.entries(env).flatMap(([k, v]) => (v === undefined ? ['-u', k] : [`${k}=${v}`]));
  const cmd = [
    'env', ...envArgs, `TMPDIR=${work.path}`, process.execPath, cliPath, 'up', model, '--nodes', 'local,local', '--llama-server', llamaServer,
    '--ctx', '1024', '--threads', '1', '--run-dir', work.path, '--api-port', String(await getPort()),
    '--stage-port-base', String(await stagePortBase(2)), '--prompt', 'Once upon a time, in a small village by the sea,', '--max-tokens', String(maxTokens),
  ].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const exitFile = join(work.path, `${name}.exit-code`);
  tmuxIn(conf, 'new-session', '-d', '-s', name, '-x', '110', '-y', '40', `${cmd}; echo $? > '${exitFile}'`);
  return {
    capture: () => tmux('capture-pane', '-p', '-J', '-t', name),
    exitCode: () => (existsSync(exitFile) ? readFileSync(exitFile, 'utf8').trim() || undefined : undefined),
  };
}

describe('the TUI in tmux, real engine', { timeout: 600_000 }, () => {
  it('shows both node rows and the streamed answer, then the final frame stays with the tokens', async (t) => {
    const real = await realModelOrSkip(t);
    if (!real) return;
    const model = join(work.path, 'gemma3-270m.gguf');
    symlinkSync(real, model);
    // A user's terminal, not a CI job: Ink draws only the last frame when it sees CI (which .ci/run exports).
    const { capture, exitCode } = await launch(session, model, 100, { CI: undefined, CONTINUOUS_INTEGRATION: undefined });

    // While it runs: the header, one row per rank (the head starred) and tokens arriving in the box. (100 tokens keep
    // the stream on screen for several seconds, so a poll cannot miss it, and stay under the box's 600-character tail.)
    let during = '';
    let ranks: string[] = [];
    const live = await poll(() => {
      during = capture();
      const rows = /RANK\s+NODE\s+LAYERS\s+PHASE/.test(during) && /^\s*0\*\s+local\s+0:\d+\s+ready/m.test(during) && /^\s*1\s+local\s+\d+:18\s+ready/m.test(during);
      // Positive control for the leftover query, taken while a frame shows the ranks ready.
      if (rows && ranks.length < 2) ranks = work.processes().filter((l) => /^\d+ \S*\/llama-server -m .*--layer-range/.test(l));
      return rows && tokenBox(during).length > 0;
    }, 300_000);
    assert.ok(live, `the TUI never showed ready rows and tokens:\n${during}`);
    assert.equal(ranks.length, 2, `positive control: the ranks are found while they run:\n${work.processes().join('\n')}`);

    assert.ok(await poll(() => exitCode() !== undefined, 300_000), `up did not finish:\n${capture()}`);
    assert.equal(exitCode(), '0', `up exited with a failure:\n${capture()}`);
    const last = capture();
    assert.match(last, /RANK\s+NODE\s+LAYERS\s+PHASE/);
    assert.match(last, /^\s*0\*\s+local\s+0:\d+/m);
    assert.match(last, /^\s*1\s+local\s+\d+:18/m);
    const answer = tokenBox(last);
    assert.ok(wordsIn(answer).length >= 12, `the token box holds no real text:\n${last}`);
    // The live frame held the start of the same answer (its last word may have been cut mid-token).
    const liveWords = wordsIn(tokenBox(during)).slice(0, -1);
    assert.deepEqual(wordsIn(answer).slice(0, liveWords.length), liveWords, `live:\n${during}\nfinal:\n${last}`);

    tmux('kill-session', '-t', session);
    assert.deepEqual(await work.survivors(15_000), []);
  });

  it('in a CI job on a terminal, prints the plain lines instead of a TUI that would show only its last frame', async (t) => {
    const real = await realModelOrSkip(t);
    if (!real) return;
    const { capture, exitCode } = await launch('lre2eci', real, 8, { CI: 'true' });
    assert.ok(await poll(() => exitCode() !== undefined, 300_000), `up did not finish:\n${capture()}`);
    const screen = capture();
    assert.equal(exitCode(), '0', `up exited with a failure:\n${screen}`);
    assert.match(screen, /chain ready: 2 ranks/);
    assert.doesNotMatch(screen, /RANK\s+NODE\s+LAYERS\s+PHASE/, 'the TUI table was drawn in a CI job');
    assert.doesNotMatch(screen, /╭/, 'the TUI token box was drawn in a CI job');
    tmux('kill-session', '-t', 'lre2eci');
    assert.deepEqual(await work.survivors(15_000), []);
  });
});
