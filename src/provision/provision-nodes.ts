// Provisioning: before any rank starts, every remote node gets a patched llama-server (cached by pin + patches +
// platform) and only its ranks' weights (its own Ollama blob, or a pushed, verified slice). Preflight first: every
// missing prerequisite on every node is named in one UserError before anything is uploaded.
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { UserError } from '../errors.js';
import type { Emit, NodePhase } from '../events/events.js';
import { loadGgufModel, type GgufModel } from '../gguf/model.js';
import { shellJoin } from '../process/shell-quote.js';
import type { Transport } from '../ssh/transport.js';
import { localCacheRoot, localEngine, identity, modelDigest } from './local-engine.js';
import { localSlice, pruneLocalCache, sliceName, type LocalSlice } from './local-files.js';
import { acquireNodeLock, describeOwner } from './node-lock.js';
import { parseProbe, probeArgv, type NodeProbe } from './node-probe.js';
import { planNode, type EngineInput, type NodePlan } from './provision-plan.js';
import { runNodePlan, type NodeResult } from './run-node.js';

export interface ProvisionRank {
  rank: number;
  /** Transport name of the node the rank runs on. */
  node: string;
  layerStart: number;
  layerEnd: number;
  /** A spare node's copy of a worker's range: provisioned, not started, and shown as no rank's progress. */
  spare?: boolean;
}

export interface ProvisionRequest {
  ranks: readonly ProvisionRank[];
  transports: ReadonlyMap<string, Transport>;
  /** The binary: provisioned from the engine, or a path given by the user that must exist on every node. */
  binary: { engine: EngineInput; local: string } | { path: string };
  /** The weights: sliced per rank from the model, or a path that must exist on every node. */
  model: { path: string; gguf: GgufModel; digest?: string } | { path: string };
  /** Memory the plan estimates per node name. */
  memoryNeeded?: ReadonlyMap<string, number>;
  /** Cache root on the nodes (default: their LLAMA_RELAY_CACHE or ~/.cache/llama-relay). */
  nodeCacheDir?: string;
  /** Pidfile directory on the nodes for long provisioning commands (builds). */
  runDir?: string;
  /** How long to wait for another launcher that is provisioning the same node cache (default 1800 s). */
  lockWaitSeconds?: number;
  /** Environment for every provisioning command on the nodes (tests restrict PATH). */
  nodeEnv?: Readonly<Record<string, string>>;
  /** Local cache root for slices (default ~/.cache/llama-relay). */
  localCacheDir?: string;
  /** CMake flags for a build on a node (default: the patched llama.cpp flags for its platform). */
  cmakeFlags?: (plan: NodePlan) => readonly string[];
  emit: Emit;
  signal?: AbortSignal;
}

export interface RankResources {
  binary: string;
  model: string;
}

export interface ProvisionReport {
  /** Per rank (spare entries left out), in request order. */
  ranks: RankResources[];
  /** Per spare node, per worker rank it may take: that rank's llama-server and weights there. */
  spares: Map<string, Map<number, RankResources>>;
  plans: Map<string, NodePlan>;
  /** Bytes sent per node (binary, source, slices). */
  sent: Map<string, number>;
}

export async function provision(req: ProvisionRequest): Promise<ProvisionReport> {
  const { emit } = req;
  const sig = req.signal ? { signal: req.signal } : {};
  const wrap = (argv: string[]) => (req.nodeEnv ? ['env', ...Object.entries(req.nodeEnv).map(([k, v]) => `${k}=${v}`), ...argv] : argv);
  const ranksOn = (node: string) => req.ranks.filter((r) => r.node === node);
  const phase = (node: string, p: NodePhase, extra: { progress?: number; detail?: string } = {}) =>
    ranksOn(node).forEach((r) => !r.spare && emit({ kind: 'node-phase', rank: r.rank, node, phase: p, ...extra }));

  const remote = [...req.transports.values()].filter((t) => !t.isLocal && ranksOn(t.name).length);
  const problems: string[] = [];
  const next: string[] = [];

  // 1. Given paths: checked on every node that uses them (local ones too).
  const givenBinary = 'path' in req.binary ? req.binary.path : undefined;
  const givenModel = 'gguf' in req.model ? undefined : req.model.path;
  await Promise.all(
    [...req.transports.values()].filter((t) => ranksOn(t.name).length).map(async (t) => {
      const checks: string[] = [];
      if (givenBinary) checks.push(`test -x ${shellJoin([givenBinary])} || echo "missing llama-server: ${givenBinary}"`);
      if (givenModel || t.isLocal) checks.push(`test -r ${shellJoin([req.model.path])} || echo "missing model: ${req.model.path}"`);
      if (!checks.length) return;
      phase(t.name, 'provision', { detail: 'preflight' });
      const { stdout } = await t.exec(['sh', '-c', checks.join('; ')], sig);
      for (const line of stdout.split('\n').filter(Boolean)) problems.push(`node ${t.name}: ${line}`);
    }),
  );
  if (problems.length) {
    throw new UserError(`some nodes are not ready to run their rank:\n  ${problems.join('\n  ')}`, [
      'build llama-server (scripts/build-llama.sh) and copy it to the same path on every node, or leave out --llama-server to provision it',
      'put the model at the same path on every node, or let llama-relay plan it (without --layers) to push each node its slice',
    ]);
  }

  // 2. Probe every remote node, then plan: local slices are written first so their sizes count against free disk.
  const sliced = 'gguf' in req.model ? req.model : undefined;
  const localRoot = req.localCacheDir ?? localCacheRoot();
  if (sliced && remote.length) await pruneLocalCache(localRoot);
  const digest = sliced && remote.length ? (sliced.digest ?? (await modelDigest(sliced.path, sliced.gguf, localRoot, emit))) : undefined;
  const probe = async (t: Transport, signal?: AbortSignal) =>
    parseProbe((await t.exec(wrap(probeArgv(req.nodeCacheDir, digest ? [digest] : [])), signal ? { signal } : {})).stdout);
  const probes = new Map<string, NodeProbe>();
  await Promise.all(
    remote.map(async (t) => {
      phase(t.name, 'provision', { detail: 'preflight' });
      probes.set(t.name, await probe(t, req.signal));
    }),
  );
  const slices = new Map<number, LocalSlice>();
  const sliceDir = join(localRoot, 'slices');
  const modelId = sliced ? (digest ?? identity(sliced.path)) : '';
  for (const t of remote) {
    if (!sliced) break;
    for (const r of ranksOn(t.name)) {
      if (digest && probes.get(t.name)!.blobs.has(digest)) continue;
      if (slices.has(r.rank)) continue; // the same range for a spare: one slice
      const spec = { layerStart: r.layerStart, layerEnd: r.layerEnd, head: r.rank === 0 };
      phase(t.name, 'provision', { detail: `slicing layers ${r.layerStart}-${r.layerEnd}` });
      slices.set(r.rank, await localSlice(sliced.gguf, spec, sliceDir, sliceName(modelId, spec)));
    }
  }
  const planFor = (t: Transport, probe: NodeProbe): NodePlan => {
    const weights = sliced
      ? ranksOn(t.name).map((r) => {
          const s = slices.get(r.rank);
          return { rank: r.rank, slice: { name: s ? basename(s.path) : '', bytes: s?.bytes ?? 0 }, modelDigest: digest };
        })
      : [];
    const mem = req.memoryNeeded?.get(t.name);
    return planNode(t.name, probe, 'engine' in req.binary ? req.binary.engine : undefined, weights, mem !== undefined ? { memoryNeeded: mem } : {});
  };
  const plans = new Map<string, NodePlan>();
  for (const t of remote) {
    const plan = planFor(t, probes.get(t.name)!);
    plans.set(t.name, plan);
    problems.push(...plan.problems.map((p) => `node ${t.name}: ${p}`));
    next.push(...plan.next);
  }
  if (problems.length) {
    for (const t of remote) if (plans.get(t.name)?.problems.length) phase(t.name, 'failed', { detail: 'preflight' });
    throw new UserError(`preflight found problems on ${problems.length === 1 ? 'a node' : 'the nodes'}; nothing was uploaded:\n  ${problems.join('\n  ')}`, [...new Set(next)]);
  }

  // 3. Provision every node in parallel; the first failure stops the others.
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  req.signal?.addEventListener('abort', onAbort, { once: true });
  if (req.signal?.aborted) stop.abort();
  const out = new Map<string, NodeResult>();
  const results = await Promise.allSettled(
    remote.map(async (t) => {
      try {
        // One launcher at a time per node cache; the lock goes when we release it or exit.
        const lock = await acquireNodeLock(t, probes.get(t.name)!.cacheDir, {
          owner: { pid: process.pid, host: hostname() },
          waitSeconds: req.lockWaitSeconds ?? 1800,
          wrap,
          signal: stop.signal,
          onWaiting: (owner) => {
            phase(t.name, 'provision', { detail: 'waiting for another launcher' });
            emit({ kind: 'info', message: `waiting for another llama-relay provisioning ${t.name} (${describeOwner(owner)})` });
          },
          onUnguarded: (why) => emit({ kind: 'info', message: `node ${t.name}: provisioning without a lock (${why})` }),
        });
        try {
          let plan = plans.get(t.name)!;
          if (lock.waited) {
            // The other launcher may have built, copied or pushed what this plan was going to: look again.
            plan = planFor(t, await probe(t, stop.signal));
            plans.set(t.name, plan);
            if (plan.problems.length) throw new UserError(`node ${t.name}: after another launcher provisioned it:\n  ${plan.problems.join('\n  ')}`, plan.next);
          }
          const cmakeFlags = req.cmakeFlags?.(plan);
          out.set(
            t.name,
            await runNodePlan(t, plan, {
              emit,
              phase: (p, extra) => phase(t.name, p, extra),
              slices,
              wrap,
              signal: stop.signal,
              cmakeFlags,
              runDir: req.runDir,
            }),
          );
        } finally {
          await lock.release();
        }
      } catch (err) {
        if (!stop.signal.aborted) phase(t.name, 'failed', { detail: 'provision' });
        stop.abort();
        throw err;
      }
    }),
  );
  req.signal?.removeEventListener('abort', onAbort);
  // The node that failed first explains it; the others were stopped because of it.
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected' && !/was stopped/.test(String((r.reason as Error)?.message)));
  const anyFailed = failed ?? results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (anyFailed) throw anyFailed.reason;
  const sent = new Map([...out].map(([n, r]) => [n, r.sent]));

  const localBinary = 'engine' in req.binary ? req.binary.local : req.binary.path;
  const resources = (r: ProvisionRank): RankResources => {
    const o = out.get(r.node);
    return { binary: o?.binary ?? givenBinary ?? localBinary, model: o?.models.get(r.rank) ?? req.model.path };
  };
  const ranks = req.ranks.filter((r) => !r.spare).map(resources);
  const spares = new Map<string, Map<number, RankResources>>();
  for (const r of req.ranks.filter((x) => x.spare)) spares.set(r.node, (spares.get(r.node) ?? new Map()).set(r.rank, resources(r)));
  return { ranks, spares, plans, sent };
}


/**
 * What `up` needs: per rank, the llama-server and model paths on its node. A binary given by the user (--llama-server)
 * and a model with --layers must already be at the same path on every node; otherwise remote nodes are provisioned.
 */
export async function provisionChain(o: {
  ranks: readonly ProvisionRank[];
  transports: ReadonlyMap<string, Transport>;
  binary: string;
  binaryGiven: boolean;
  model: string;
  sliceModel: boolean;
  /** The plan's memory estimate per rank, checked against each node's memory. */
  memory?: readonly number[];
  /** Spare nodes: each gets the binary and every worker rank's weights (it may take any of them, one at a time). */
  spares?: readonly string[];
  nodeCacheDir?: string;
  runDir?: string;
  lockWaitSeconds?: number;
  emit: Emit;
  signal?: AbortSignal;
}): Promise<{ ranks: RankResources[]; spares: Map<string, Map<number, RankResources>> }> {
  const spareRanks = (o.spares ?? []).flatMap((node) => o.ranks.filter((r) => r.rank > 0).map((r) => ({ ...r, node, spare: true })));
  const all = [...o.ranks, ...spareRanks];
  const anyRemote = all.some((r) => !o.transports.get(r.node)?.isLocal);
  const binary: ProvisionRequest['binary'] = o.binaryGiven || !anyRemote ? { path: o.binary } : { engine: await localEngine(o.binary), local: o.binary };
  const model: ProvisionRequest['model'] = o.sliceModel && anyRemote ? { path: o.model, gguf: await loadGgufModel(o.model) } : { path: o.model };
  const memoryNeeded = new Map<string, number>();
  if (o.memory) o.ranks.forEach((r, i) => memoryNeeded.set(r.node, (memoryNeeded.get(r.node) ?? 0) + (o.memory![i] ?? 0)));
  // A spare runs one rank at a time: it needs the largest worker's memory, not their sum.
  const worst = Math.max(0, ...(o.memory ?? []).slice(1));
  if (o.memory) for (const node of o.spares ?? []) memoryNeeded.set(node, worst);
  const r = await provision({
    ranks: all,
    ...(o.memory ? { memoryNeeded } : {}),
    transports: o.transports,
    binary,
    model,
    nodeCacheDir: o.nodeCacheDir,
    runDir: o.runDir,
    lockWaitSeconds: o.lockWaitSeconds,
    emit: o.emit,
    signal: o.signal,
  });
  if (spareRanks.length) o.emit({ kind: 'info', message: `spare${o.spares!.length > 1 ? 's' : ''} ${o.spares!.join(', ')} ready to take any worker's range` });
  return { ranks: r.ranks, spares: r.spares };
}
