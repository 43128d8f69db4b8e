// The pause a resume costs (issue 12): one greedy stream through a running chain, a worker rank SIGKILLed once the
// stream has FAULT_AT_TOKEN tokens and started again by the caller (the same launch path as the bench's own start),
// and the time from the kill to the next token the client receives. The head keeps the request and re-runs its
// tokens once the chain is whole again (patch 0007), so the stream should complete with every token it asked for.
import { formatError } from '../errors.js';
import type { FaultTrial, ResumePause } from './bench-result.js';
import { streamCompletion } from './completion-client.js';
import { spread } from './stats.js';
import type { StreamTrace } from './stream-timing.js';

/** The point of failure: about token 20 of the stream. */
export const FAULT_AT_TOKEN = 20;
/** A fault stream asks for at least this many tokens, so there is a stream left to resume. */
export const FAULT_MIN_TOKENS = 40;

export interface FaultInjection {
  readonly rank: number;
  /**
   * SIGKILLs the rank and resolves once it is running and ready again; all times on performance.now(). `rejoinedAt`
   * settles when the head's /health, having said the chain was down, first says it is whole again (undefined: never seen).
   */
  readonly killAndRestart: () => Promise<{ readonly killedAt: number; readonly readyAt: number; readonly rejoinedAt: Promise<number | undefined> }>;
}

/**
 * When the stream got its first token after the fault: the arrival that ends the longest wait after `killedAt`
 * (counting the wait from the kill itself). A token the head had decoded before the kill may still arrive just after
 * it; the token that had to wait for the restart and the re-run is the one after the long gap. Pure.
 */
export function resumedAt(trace: StreamTrace, killedAt: number): number | undefined {
  let prev = killedAt;
  let best: { gap: number; at: number } | undefined;
  for (const a of trace.arrivals) {
    if (a.at < killedAt) continue;
    const gap = a.at - prev;
    if (!best || gap > best.gap) best = { gap, at: a.at };
    prev = a.at;
  }
  return best?.at;
}

export async function runFaultTrial(
  port: number,
  o: {
    readonly prompt: readonly number[];
    readonly nPredict: number;
    readonly logitBias: readonly (readonly [number, false])[];
    readonly fault: FaultInjection;
    readonly signal?: AbortSignal;
  },
): Promise<FaultTrial> {
  let restart: ReturnType<FaultInjection['killAndRestart']> | undefined;
  const base = { rank: o.fault.rank, faultAtToken: FAULT_AT_TOKEN, expectedTokens: o.nPredict };
  try {
    const s = await streamCompletion(
      port,
      { prompt: o.prompt, nPredict: o.nPredict, logitBias: o.logitBias },
      {
        signal: o.signal,
        onTokens: (n) => {
          if (n >= FAULT_AT_TOKEN && !restart) {
            restart = o.fault.killAndRestart();
            // Awaited once the stream ends; a failed restart must not count as unhandled meanwhile.
            restart.catch(() => undefined);
          }
        },
      },
    );
    if (!restart) {
      return { ...base, tokens: s.predictedN, completed: false, pauseMs: Number.NaN, restartMs: Number.NaN, rejoinMs: Number.NaN, error: `the stream ended after ${s.predictedN} tokens, before the fault` };
    }
    const { killedAt, readyAt, rejoinedAt } = await restart;
    const next = resumedAt(s.trace, killedAt);
    const rejoined = await rejoinedAt;
    return {
      ...base,
      tokens: s.predictedN,
      completed: s.predictedN === o.nPredict,
      pauseMs: next === undefined ? Number.NaN : next - killedAt,
      restartMs: readyAt - killedAt,
      rejoinMs: rejoined === undefined ? Number.NaN : rejoined - killedAt,
    };
  } catch (err) {
    // A restart still under way must finish before the caller stops the configuration.
    const r = await restart?.catch(() => undefined);
    await r?.rejoinedAt;
    return {
      ...base,
      tokens: Number.NaN,
      completed: false,
      pauseMs: Number.NaN,
      restartMs: r ? r.readyAt - r.killedAt : Number.NaN,
      rejoinMs: Number.NaN,
      error: formatError(err).replace(/^error: /, ''),
    };
  }
}

/** Trials (of one round, or pooled over rounds) summarized: medians and max of the pause and the restart. Pure. */
export function summarizeFaults(trials: readonly FaultTrial[]): ResumePause {
  return {
    trials,
    pauseMs: spread(trials.map((t) => t.pauseMs)),
    restartMs: spread(trials.map((t) => t.restartMs)),
    rejoinMs: spread(trials.map((t) => t.rejoinMs)),
    completed: trials.filter((t) => t.completed).length,
  };
}
