// Where an upload of a slice restarts, from what the node already holds. Pure.

export type ResumeStep =
  /** A verified slice is in place: check its digest once more and use it. */
  | { kind: 'verify-final' }
  /** A partial upload of `bytes`: compare its digest with ours, then append the rest. */
  | { kind: 'check-prefix'; bytes: number }
  | { kind: 'fresh' };

export function resumeStep(state: { final?: number; part?: number }, total: number): ResumeStep {
  if (state.final === total) return { kind: 'verify-final' };
  if (state.part !== undefined && state.part > 0 && state.part <= total) return { kind: 'check-prefix', bytes: state.part };
  return { kind: 'fresh' };
}

/** Whole percent steps only, so a multi-GB upload sends ~100 events, not one per chunk. */
export function percentStep(prev: number, sent: number, total: number): number | undefined {
  const pct = total > 0 ? Math.floor((sent / total) * 100) : 100;
  return pct > prev ? pct : undefined;
}
