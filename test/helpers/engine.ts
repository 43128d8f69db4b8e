// Starts stock llama-server and llama-relay chains of the patched one on loopback, for engine tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import getPort from 'get-port';
import { repoRoot } from './llama-src.js';

export interface BinDirs {
  patched: string;
  stock: string;
}

let dirs: Promise<BinDirs> | undefined;

/** Both builds from scripts/build-llama.sh (cached by pin+patches+flags: seconds once built). */
export function binDirs(): Promise<BinDirs> {
  // development escape hatch: LLAMA_RELAY_TEST_BINS=<patched bin dir>,<stock bin dir> skips the build script
  const given = process.env.LLAMA_RELAY_TEST_BINS?.split(',');
  if (given?.length === 2) return Promise.resolve({ patched: given[0]!, stock: given[1]! });
  dirs ??= (async () => {
    const { stdout } = await promisify(execFile)('bash', [join(repoRoot, 'scripts/build-llama.sh')], {
      cwd: repoRoot,
      maxBuffer: 64 * 1024 * 1024,
    });
    const lines = stdout.trim().split('\n');
    const patched = lines.at(-2)?.replace(/^patched=/, '');
    const stock = lines.at(-1)?.replace(/^stock=/, '');
    if (!patched || !stock) throw new Error(`build-llama.sh printed no patched=/stock= lines:\n${stdout}`);
    return { patched, stock };
  })();
  return dirs;
}

export interface Proc {
  child: ChildProcess;
  log: string[];
  exited: Promise<number | null>;
}

function start(bin: string, args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const log: string[] = [];
  const onData = (b: Buffer) => {
    for (const line of b.toString().split('\n')) if (line) log.push(line);
    if (log.length > 4000) log.splice(0, log.length - 4000);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, log, exited };
}

export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000, proc?: Proc) {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (await cond()) return;
    if (proc && proc.child.exitCode !== null) {
      throw new Error(`${what}: process exited with ${proc.child.exitCode}\n${proc.log.slice(-30).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}\n${proc?.log.slice(-30).join('\n') ?? ''}`);
}

/** The head's chain stats from /health (the engine's llama_stage_stats_json), with the fields a test reads. */
export async function chainStats<T>(port: number): Promise<T> {
  const h = JSON.parse((await healthStatus(port)).body) as { chain?: T };
  if (!h.chain) throw new Error(`/health on port ${port} has no chain stats`);
  return h.chain;
}

export async function healthStatus(port: number): Promise<{ status: number; body: string }> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/health`);
    return { status: r.status, body: await r.text() };
  } catch (e) {
    return { status: 0, body: String(e) };
  }
}

export interface Server {
  port: number;
  procs: Proc[];
  stop(): Promise<void>;
}

async function stopAll(procs: Proc[]) {
  for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGTERM');
  await Promise.all(
    procs.map(async (p) => {
      const t = setTimeout(() => p.child.kill('SIGKILL'), 5000);
      await p.exited;
      clearTimeout(t);
    }),
  );
}

/** Common flags: same threads everywhere, so stock and chain compute the same numbers. */
export const commonArgs = ['-t', '1', '-tb', '1', '--no-webui', '-c', '1024'];

export async function startStock(model: string, extra: string[] = []): Promise<Server> {
  const { stock } = await binDirs();
  const port = await getPort();
  const p = start(join(stock, 'llama-server'), ['-m', model, '--host', '127.0.0.1', '--port', String(port), ...commonArgs, ...extra]);
  await waitFor(async () => (await healthStatus(port)).status === 200, 'stock llama-server /health', 120_000, p);
  return { port, procs: [p], stop: () => stopAll([p]) };
}

export interface Chain extends Server {
  ranks: { range: [number, number]; listen: string; proc: Proc; args: string[] }[];
  secretFile: string;
  restartRank(i: number): Promise<void>;
}

/** A chain on loopback: workers are started downstream-first, then the head; resolves when /health is 200. */
export async function startChain(
  model: string,
  ranges: [number, number][],
  extra: string[] = [],
  opts: {
    env?: NodeJS.ProcessEnv;
    timeoutS?: number;
    perRankArgs?: (i: number) => string[];
    waitHealthy?: boolean;
    /** The address rank i dials instead of its downstream's listen address (e.g. a relay in the path). */
    via?: (i: number, next: string, secret: string) => Promise<string>;
    /** Runs once rank i (> 0) is listening, before the ranks upstream of it start; also after a restart. */
    onRankReady?: (i: number, listen: string) => Promise<void>;
  } = {},
): Promise<Chain> {
  const { patched } = await binDirs();
  const dir = mkdtempSync(join(tmpdir(), 'relay-chain-'));
  const secretFile = join(dir, 'secret');
  writeFileSync(secretFile, `test-secret-${Math.random()}\n`, { mode: 0o600 });
  const ports = await Promise.all(ranges.map(() => getPort()));
  const httpPort = await getPort();
  const listen = ports.map((p) => `127.0.0.1:${p}`);
  const secret = readFileSync(secretFile, 'utf8').trim();
  const nextOf = await Promise.all(ranges.map((_, i) => (opts.via ? opts.via(i, listen[(i + 1) % ranges.length]!, secret) : Promise.resolve(listen[(i + 1) % ranges.length]!))));
  const ranks: Chain['ranks'] = [];
  const bin = join(patched, 'llama-server');
  const argsFor = (i: number): string[] => {
    const [a, b] = ranges[i]!;
    const next = nextOf[i]!;
    const args = [
      '-m', model, ...commonArgs, ...extra, ...(opts.perRankArgs?.(i) ?? []),
      '--layer-range', `${a}:${b}`, '--stage-listen', listen[i]!, '--stage-next', next,
      '--stage-secret-file', secretFile, '--stage-timeout', String(opts.timeoutS ?? 30),
    ];
    if (i === 0) args.push('--host', '127.0.0.1', '--port', String(httpPort));
    return args;
  };
  const startRank = async (i: number) => {
    const args = argsFor(i);
    const proc = start(bin, args, opts.env);
    if (i > 0) {
      await waitFor(() => proc.log.some((l) => l.includes('llama-relay: stage ready')), `rank ${i} ready`, 120_000, proc);
      await opts.onRankReady?.(i, listen[i]!);
    }
    return { proc, args };
  };
  for (let i = ranges.length - 1; i >= 1; i--) {
    const { proc, args } = await startRank(i);
    ranks[i] = { range: ranges[i]!, listen: listen[i]!, proc, args };
  }
  const head = await startRank(0);
  ranks[0] = { range: ranges[0]!, listen: listen[0]!, proc: head.proc, args: head.args };
  const all = () => ranks.map((r) => r.proc);
  if (opts.waitHealthy !== false) {
    await waitFor(async () => (await healthStatus(httpPort)).status === 200, 'chain head /health', 120_000, head.proc);
  } else {
    await waitFor(async () => (await healthStatus(httpPort)).status !== 0, 'chain head HTTP', 120_000, head.proc);
  }
  return {
    port: httpPort,
    ranks,
    secretFile,
    get procs() {
      return all();
    },
    stop: () => stopAll(all()),
    async restartRank(i: number) {
      const r = ranks[i]!;
      if (r.proc.child.exitCode === null) {
        r.proc.child.kill('SIGKILL');
        await r.proc.exited;
      }
      const { proc } = await startRank(i);
      r.proc = proc;
    },
  };
}

export interface Completion {
  content: string;
  tokens: number[];
  probs: { id: number; logprob: number; top: { id: number; logprob: number }[] }[];
}

/** Printable ASCII only: random-weight fixtures otherwise emit broken UTF-8, which the stock server rejects. */
export const ASCII_GRAMMAR = 'root ::= [ -~]+';

interface RawCompletion {
  content: string;
  tokens?: number[];
  completion_probabilities?: { id: number; logprob: number; top_logprobs: { id: number; logprob: number }[] }[];
}

function toCompletion(d: RawCompletion): Completion {
  return {
    content: d.content,
    tokens: d.tokens ?? [],
    probs: (d.completion_probabilities ?? []).map((p) => ({
      id: p.id,
      logprob: p.logprob,
      top: p.top_logprobs.map((t) => ({ id: t.id, logprob: t.logprob })),
    })),
  };
}

async function post(port: number, body: Record<string, unknown>): Promise<unknown> {
  const r = await fetch(`http://127.0.0.1:${port}/completion`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ temperature: 0, n_predict: 64, n_probs: 5, cache_prompt: true, grammar: ASCII_GRAMMAR, ...body }),
  });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${text}`);
  return JSON.parse(text);
}

export async function complete(port: number, body: Record<string, unknown>): Promise<Completion> {
  return toCompletion((await post(port, body)) as RawCompletion);
}

/** Several prompts in one request: the server starts them together in parallel slots (deterministic batching). */
export async function completeMany(port: number, prompts: string[], body: Record<string, unknown> = {}): Promise<Completion[]> {
  return ((await post(port, { ...body, prompt: prompts })) as RawCompletion[]).map(toCompletion);
}

/** The n_probs every request of these helpers asks for (post() and scenarios' streaming request). */
export const N_PROBS = 5;

/**
 * Throws with the first difference: token ids must match; at each token the chosen token's own logprob and all
 * `nProbs` top logprobs (both lists exactly that long) within tol. Returns the largest logprob difference seen.
 */
export function assertSameCompletion(a: Completion, b: Completion, tol = 1e-4, what = '', nProbs = N_PROBS) {
  const ids = (c: Completion) => c.probs.map((p) => p.id);
  const ia = ids(a);
  const ib = ids(b);
  if (ia.length === 0) throw new Error(`${what}: no tokens generated`);
  for (let i = 0; i < Math.max(ia.length, ib.length); i++) {
    if (ia[i] !== ib[i]) throw new Error(`${what}: token ${i} differs: ${ia[i]} vs ${ib[i]}\n${a.content}\n---\n${b.content}`);
    const pa = a.probs[i]!;
    const pb = b.probs[i]!;
    if (!(Math.abs(pa.logprob - pb.logprob) <= tol)) {
      throw new Error(`${what}: token ${i} (${pa.id}) logprob differs: ${pa.logprob} vs ${pb.logprob}`);
    }
    if (pa.top.length !== nProbs || pb.top.length !== nProbs) {
      throw new Error(`${what}: token ${i} has ${pa.top.length} vs ${pb.top.length} top logprobs, want ${nProbs} each`);
    }
    for (let k = 0; k < nProbs; k++) {
      const ta = pa.top[k]!;
      const tb = pb.top[k]!;
      // Near-ties may swap places; anything else must be the same candidate.
      if (ta.id !== tb.id && !(Math.abs(ta.logprob - tb.logprob) <= tol)) {
        throw new Error(`${what}: token ${i} top-${k} differs: ${ta.id}/${ta.logprob} vs ${tb.id}/${tb.logprob}`);
      }
      if (!(Math.abs(ta.logprob - tb.logprob) <= tol)) {
        throw new Error(`${what}: token ${i} top-${k} logprob differs by ${Math.abs(ta.logprob - tb.logprob)}`);
      }
    }
  }
  return maxLogprobDelta(a, b);
}

export function maxLogprobDelta(a: Completion, b: Completion): number {
  let m = 0;
  a.probs.forEach((p, i) => {
    const q = b.probs[i];
    if (!q) return;
    if (q.id === p.id) m = Math.max(m, Math.abs(p.logprob - q.logprob));
    p.top.forEach((t, k) => {
      const u = q.top[k];
      if (u && u.id === t.id) m = Math.max(m, Math.abs(t.logprob - u.logprob));
    });
  });
  return m;
}
