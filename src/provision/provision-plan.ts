// What each node needs before its ranks can start, as data: the binary step, the weight steps, and the preflight
// problems (every missing prerequisite, named per node). Pure: tested table-style, run by provision-nodes.ts.
import { formatBytes } from '../plan/size.js';
import type { NodeProbe } from './node-probe.js';
import { binaryKey, describePlatform, platformMismatch, platformOf, type Platform } from './platform.js';

/** The engine to provision: a source key (pin + patches), the local build, and the source tree to ship. */
export interface EngineInput {
  sourceKey: string;
  /** The local patched llama-server, copied when the node's platform matches this machine's. */
  localBinary?: { path: string; bytes: number; platform: Platform };
  /** The patched source tree, shipped when the node must build. */
  source?: { dir: string; bytes: number; /** The pinned commit, for the node build's version (no .git is shipped). */ commit?: string };
  /** Extra disk a build tree takes beyond the source (objects, libraries). */
  buildOverheadBytes: number;
}

export type BinaryStep =
  | { kind: 'reuse'; path: string }
  | { kind: 'copy'; from: string; to: string; bytes: number }
  /** bytes: disk the build takes (source + build tree); sourceBytes: what goes over the wire. */
  | { kind: 'build'; sourceDir: string; remoteSource: string; buildDir: string; to: string; bytes: number; sourceBytes: number; jobs: number; why: string; commit?: string };

/** One rank's weights: the slice that would be pushed, or a blob already in the node's Ollama store. */
export interface RankWeights {
  rank: number;
  /** Local slice file (written on demand) and its final size. */
  slice: { name: string; bytes: number };
  /** The full model's sha256, to find it in the node's Ollama store. */
  modelDigest?: string;
}

export type WeightStep =
  | { kind: 'ollama'; rank: number; path: string }
  | { kind: 'push'; rank: number; name: string; remotePath: string; bytes: number };

export interface NodePlan {
  node: string;
  platform: Platform;
  /** Undefined when the binary is not provisioned (a given --llama-server path). */
  binary?: BinaryStep;
  weights: WeightStep[];
  /** Bytes this node must still store (binary or source + build, slices). */
  diskBytes: number;
  problems: string[];
  next: string[];
}

export const binDir = (cache: string, key: string) => `${cache}/bin/${key}`;
export const remoteSlicePath = (cache: string, name: string) => `${cache}/slices/${name}`;

export function planBinary(probe: NodeProbe, engine: EngineInput): BinaryStep | { problem: string; next: string[] } {
  const platform = platformOf(probe);
  const key = binaryKey(engine.sourceKey, platform);
  const to = `${binDir(probe.cacheDir, key)}/llama-server`;
  if (probe.cachedBinaries.has(key)) return { kind: 'reuse', path: to };
  const mismatch = engine.localBinary ? platformMismatch(engine.localBinary.platform, platform) : 'no local build';
  if (engine.localBinary && !mismatch) return { kind: 'copy', from: engine.localBinary.path, to, bytes: engine.localBinary.bytes };
  if (!engine.source) {
    return {
      problem: `no llama-server for ${describePlatform(platform)} (${mismatch}) and no patched source tree to build one`,
      next: ['run scripts/build-llama.sh --patched-only on this machine first (it leaves the patched source in the cache)'],
    };
  }
  return {
    kind: 'build',
    sourceDir: engine.source.dir,
    remoteSource: `${probe.cacheDir}/src/${key}`,
    buildDir: `${probe.cacheDir}/build/${key}`,
    to,
    bytes: engine.source.bytes + engine.buildOverheadBytes,
    sourceBytes: engine.source.bytes,
    jobs: probe.cpus,
    why: mismatch ?? 'platform differs',
    commit: engine.source.commit,
  };
}

const BUILD_TOOLS: { name: string; any: readonly string[]; install: string }[] = [
  { name: 'cmake', any: ['cmake'], install: 'cmake' },
  { name: 'a C++ compiler', any: ['c++', 'g++', 'clang++'], install: 'build-essential' },
  { name: 'git', any: ['git'], install: 'git' },
];

/** Everything one node needs, with every problem found at once. */
export function planNode(
  node: string,
  probe: NodeProbe,
  engine: EngineInput | undefined,
  ranks: readonly RankWeights[],
  opts: { memoryNeeded?: number; resumableBytes?: ReadonlyMap<string, number> } = {},
): NodePlan {
  const problems: string[] = [];
  const next: string[] = [];
  const platform = platformOf(probe);
  let binary: BinaryStep | undefined;
  let disk = 0;
  if (!probe.writable) {
    problems.push(`cannot create or write the cache directory ${probe.cacheDir}`);
    next.push(`node ${node}: make ${probe.cacheDir} writable, or set LLAMA_RELAY_CACHE there to a writable directory`);
  }
  if (engine) {
    const b = planBinary(probe, engine);
    if ('problem' in b) {
      problems.push(b.problem);
      next.push(...b.next);
    } else {
      binary = b;
      if (b.kind === 'copy') disk += b.bytes;
      if (b.kind === 'build') {
        disk += b.bytes;
        const missing = BUILD_TOOLS.filter((t) => !t.any.some((x) => probe.tools.has(x)));
        const alsoNeeded = ['tar'].filter((t) => !probe.tools.has(t));
        if (missing.length || alsoNeeded.length) {
          const names = [...missing.map((t) => t.name), ...alsoNeeded];
          problems.push(`must build llama-server from source (${b.why}) but ${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} not installed`);
          const pkgs = [...missing.map((t) => t.install), ...alsoNeeded];
          next.push(`node ${node}: install ${names.join(', ')} (Debian/Ubuntu: sudo apt-get install ${pkgs.join(' ')})`);
        }
      }
    }
  }
  const weights: WeightStep[] = ranks.map((r) => {
    const blob = r.modelDigest ? probe.blobs.get(r.modelDigest) : undefined;
    if (blob) return { kind: 'ollama', rank: r.rank, path: blob };
    const remotePath = remoteSlicePath(probe.cacheDir, r.slice.name);
    disk += Math.max(0, r.slice.bytes - (opts.resumableBytes?.get(r.slice.name) ?? 0));
    return { kind: 'push', rank: r.rank, name: r.slice.name, remotePath, bytes: r.slice.bytes };
  });
  if (weights.some((w) => w.kind === 'push') && !probe.tools.has('sha256sum')) {
    problems.push('sha256sum is not installed, so uploaded slices cannot be verified');
    next.push(`node ${node}: install coreutils (sha256sum)`);
  }
  if (probe.writable && probe.freeBytes !== undefined && disk > probe.freeBytes) {
    problems.push(`needs ${formatBytes(disk)} in ${probe.cacheDir} but only ${formatBytes(probe.freeBytes)} is free there`);
    next.push(`node ${node}: free ${formatBytes(disk - probe.freeBytes)} or more in ${probe.cacheDir}, or point LLAMA_RELAY_CACHE there to a bigger disk`);
  }
  if (opts.memoryNeeded !== undefined && probe.memTotalBytes !== undefined && opts.memoryNeeded > probe.memTotalBytes) {
    problems.push(`its ranks need about ${formatBytes(opts.memoryNeeded)} of memory but it has ${formatBytes(probe.memTotalBytes)} in total`);
    next.push(`node ${node}: give it fewer layers (a budget: ${node}=${Math.floor(probe.memTotalBytes / 1e9)}G) or add nodes`);
  }
  return { node, platform, binary, weights, diskBytes: disk, problems, next };
}
