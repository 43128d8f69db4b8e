// What a bench run found, as plain JSON-ready data (the --json file is exactly a BenchReport).
import type { BenchSample } from '../events/events.js';
import type { BenchSweep, ConfigKind } from './bench-config.js';
import type { ProcessRole } from './config-launch.js';
import type { Spread } from './stats.js';

/** One request batch (`parallel` concurrent streaming requests): the event stream's BenchSample. */
export type Sample = BenchSample;

export interface Measurement {
  readonly promptTokens: number;
  readonly parallel: number;
  readonly samples: readonly Sample[];
  /** Request sent → first streamed token (client's clock): percentiles over every request of every repeat. */
  readonly ttftP50Ms: number;
  readonly ttftP95Ms: number;
  /** Per repeat: the server's prompt tokens/s summed over the concurrent requests. */
  readonly prefillTps: Spread;
  /** Per repeat: all streams' tokens over the wall time of the decode phase (stream-timing.ts decodePhase). */
  readonly aggregateDecodeTps: Spread;
  /** Per repeat: the median over its requests of each one's own decode tok/s (its tokens after the first over its first-to-last-token time). */
  readonly perRequestDecodeTps: Spread;
  /** 1000 / median per-request decode tok/s: one decode step as a stream sees it. */
  readonly decodeMsPerToken: number;
  readonly prefillBytesPerPromptToken: number;
  readonly decodeBytesPerToken: number;
}

export interface NodeResult {
  readonly rank: number;
  readonly node: string;
  readonly role: ProcessRole;
  readonly layers: readonly [number, number];
  readonly core?: number;
  /** Spawn → ready (worker: stage ready line; head/server: /health 200; ggml-rpc-server: accepting). */
  readonly loadMs: number;
  /** VmHWM from /proc/PID/status just before the process was stopped. */
  readonly peakRssBytes: number;
}

export interface LinkResult {
  readonly name: string;
  /** Bytes through the link until every process was ready (weights, for RPC). */
  readonly startBytes: number;
  readonly totalBytes: number;
  /** Mean time the relay actually held a chunk during the measured requests (the emulated one-way latency; 0 on a direct link). */
  readonly meanHeldMs: number;
}

export interface ConfigResult {
  readonly id: string;
  readonly kind: ConfigKind;
  readonly description: string;
  readonly ranks: number;
  readonly pipeline: boolean;
  /** Chain only: false when the links were authenticated but not encrypted (chain-N-noenc). */
  readonly encrypt?: boolean;
  /** Chain only: false when the head ran without micro-batched decode across requests (chain-N-nomb). */
  readonly microbatch?: boolean;
  /** Chain only: the head's --stage-groups N (1 in chain-N-nogroups: slot groups off); absent: the engine default. */
  readonly groups?: number;
  /** Chain only: the head's --stage-batch-groups N (0 in chain-N-nobatch); absent: off. */
  readonly batchGroupsFrom?: number;
  /** Chain only: false when no rank busy-polled its links (chain-N-nopoll). */
  readonly poll?: boolean;
  readonly hops: number;
  readonly nodes: readonly NodeResult[];
  readonly links: readonly LinkResult[];
  /**
   * False when the configuration's links are real network connections (remote nodes): they are not on this machine to
   * count, so network bytes are not measured and are NaN here (null in JSON), never 0. Local links are counted by
   * their relay or, direct at 0 ms, by the kernel (NaN too where ss cannot tell).
   */
  readonly networkMeasured: boolean;
  /** Slowest node's load time: the configuration is usable after this. */
  readonly loadMs: number;
  /** Sum over links of startBytes (NaN when not measured). */
  readonly startBytes: number;
  readonly measurements: readonly Measurement[];
  /** `--fault N`, on the N-rank chain: the pause a resume after a lost rank costs (fault-trial.ts). */
  readonly resume?: ResumePause;
  /** Set when the configuration could not be measured; the others still are. */
  readonly error?: string;
}

/** One stream through the chain with a worker rank SIGKILLed at about token `faultAtToken` and started again. */
export interface FaultTrial {
  readonly rank: number;
  readonly faultAtToken: number;
  /** Tokens the stream asked for, and got (NaN when it failed). */
  readonly expectedTokens: number;
  readonly tokens: number;
  /** No error and every token: the head resumed the request instead of failing it. */
  readonly completed: boolean;
  /** SIGKILL → the next token the client received (the restart, the chain's reconnection, the re-run of the tokens). */
  readonly pauseMs: number;
  /** SIGKILL → the restarted rank ready again (its stage ready line): the part of the pause the rank's start takes. */
  readonly restartMs: number;
  /**
   * SIGKILL → the head's /health says the chain is whole again (polled every 20 ms): restart plus the head's
   * reconnection; the rest of the pause is the re-run of the request's tokens and the next decode.
   */
  readonly rejoinMs: number;
  readonly error?: string;
}

export interface ResumePause {
  readonly trials: readonly FaultTrial[];
  /** Over the trials that resumed (NaN ones left out). */
  readonly pauseMs: Spread;
  readonly restartMs: Spread;
  readonly rejoinMs: Spread;
  /** How many trials completed. */
  readonly completed: number;
}

/** A target from the issue, evaluated on this run's numbers (undefined value: not measured in this run). */
export interface Finding {
  readonly name: string;
  readonly value: number | undefined;
  readonly target?: number;
  readonly unit: string;
  readonly pass?: boolean;
  readonly detail: string;
}

export interface HopOverhead {
  readonly config: string;
  readonly promptTokens: number;
  readonly parallel: number;
  readonly msPerToken: number;
  /** stock ms/token + hops × link latency. */
  readonly limitMsPerToken: number;
  readonly hops: number;
  readonly linkLatencyMs: number;
  /** (msPerToken - limit) / hops. */
  readonly overheadPerHopMs: number;
}

/** One configuration at one point: its aggregate decode, and that over stock's at the same point (the scaling table). */
export interface ScalingPoint {
  readonly config: string;
  readonly promptTokens: number;
  readonly parallel: number;
  readonly aggregateDecodeTps: number;
  /** undefined without a stock measurement at the same prompt length and parallel level. */
  readonly vsStock: number | undefined;
}

/** A chain with one engine feature on (`on`, e.g. chain-2) and off (`off`, chain-2-nomb) at the same point. */
export interface OnOffPoint {
  /** The feature the variant turns off, e.g. "micro-batched decode". */
  readonly feature: string;
  readonly on: string;
  readonly off: string;
  readonly promptTokens: number;
  readonly parallel: number;
  readonly aggregateDecodeTps: OnOff;
  readonly perRequestDecodeTps: OnOff;
  readonly prefillTps: OnOff;
  readonly ttftP95Ms: OnOff;
}

/** Medians of both configurations; ratio = on / off. */
export interface OnOff {
  readonly on: number;
  readonly off: number;
  readonly ratio: number;
}

export interface BenchReport {
  /**
   * 2: decode split into aggregate and per-request rates, TTFT percentiles, the scaling and on/off tables.
   * 3: adds `settings.faults` and, on the N-rank chain with `--fault N`, `configs[].resume` (the pause a resume costs).
   */
  readonly version: 3;
  readonly startedAt: string;
  readonly model: { readonly path: string; readonly layers: number; readonly fileBytes: number; readonly arch: string };
  readonly machine: { readonly cores: number; readonly cpu: string };
  readonly settings: BenchSweep & {
    readonly nodes: readonly string[];
    readonly ctx: number;
    readonly batch?: number;
    readonly ubatch?: number;
    /** Fault trials per round on the N-rank chain (`--fault`; 0: none). */
    readonly faults?: number;
  };
  readonly configs: readonly ConfigResult[];
  readonly hopOverhead: readonly HopOverhead[];
  /** Every configuration at every point, against stock at the same point. */
  readonly scaling: readonly ScalingPoint[];
  /** Every chain variant next to its chain with the feature on, at every point both measured. */
  readonly onOff: readonly OnOffPoint[];
  readonly findings: readonly Finding[];
}
