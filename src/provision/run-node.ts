// Carries out one node's plan: its binary step, then each rank's weights, reporting upload % and build % as events.
import type { Emit, NodePhase } from '../events/events.js';
import type { Transport } from '../ssh/transport.js';
import type { LocalSlice } from './local-files.js';
import type { NodePlan } from './provision-plan.js';
import { ensureBinary } from './remote-binary.js';
import { llamaCmakeFlags } from './remote-scripts.js';
import { pushSlice } from './remote-slice.js';
import { percentStep } from './resume.js';

export interface NodeRunContext {
  emit: Emit;
  /** A node-level phase, for every rank on the node. */
  phase: (p: NodePhase, extra?: { progress?: number; detail?: string }) => void;
  slices: ReadonlyMap<number, LocalSlice>;
  wrap: (argv: string[]) => string[];
  cmakeFlags?: readonly string[];
  runDir?: string;
  signal?: AbortSignal;
}

export interface NodeResult {
  binary?: string;
  /** Model path on the node, per rank. */
  models: Map<number, string>;
  /** Bytes sent to the node. */
  sent: number;
}

export async function runNodePlan(t: Transport, plan: NodePlan, ctx: NodeRunContext): Promise<NodeResult> {
  const { emit } = ctx;
  const sig = ctx.signal ? { signal: ctx.signal } : {};
  const res: NodeResult = { models: new Map(), sent: 0 };
  const b = plan.binary;
  if (b) {
    let up = -1;
    let built = -1;
    if (b.kind === 'copy') emit({ kind: 'info', message: `node ${t.name}: copying this machine's llama-server (same platform)` });
    if (b.kind === 'build') emit({ kind: 'info', message: `node ${t.name}: shipping the patched source to build llama-server there (${b.why})` });
    res.binary = await ensureBinary(t, b, {
      cmakeFlags: ctx.cmakeFlags ?? llamaCmakeFlags(plan.platform.backend, plan.platform.arch),
      ...sig,
      runDir: ctx.runDir,
      wrap: ctx.wrap,
      onUpload: (n, total) => {
        res.sent = n;
        const p = percentStep(up, n, total);
        if (p !== undefined) ctx.phase('upload', { progress: Math.min(100, (up = p)) / 100, detail: b.kind === 'copy' ? 'llama-server' : 'source' });
      },
      onBuild: (f) => {
        const p = percentStep(built, f, 1);
        if (p !== undefined) ctx.phase('build', { progress: (built = p) / 100 });
      },
    });
    if (b.kind === 'reuse') emit({ kind: 'info', message: `node ${t.name}: reusing the cached llama-server ${res.binary}` });
  }
  for (const w of plan.weights) {
    if (w.kind === 'ollama') {
      emit({ kind: 'info', message: `node ${t.name}: rank ${w.rank} uses the model from its own Ollama store (${w.path})` });
      res.models.set(w.rank, w.path);
      continue;
    }
    let pct = -1;
    const r = await pushSlice(t, ctx.slices.get(w.rank)!, w.remotePath, {
      ...sig,
      wrap: ctx.wrap,
      onInfo: (message) => emit({ kind: 'info', message }),
      onProgress: (n, total) => {
        const p = percentStep(pct, n, total);
        if (p !== undefined) emit({ kind: 'node-phase', rank: w.rank, node: t.name, phase: 'upload', progress: (pct = p) / 100, detail: `slice ${w.name}` });
      },
    });
    res.sent += r.sent;
    res.models.set(w.rank, w.remotePath);
  }
  return res;
}
