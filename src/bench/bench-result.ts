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
  readonly ttftMs: Spread;
  readonly prefillTps: Spread;
  readonly decodeTps: Spread;
  /** 1000 / median decode tokens/s (per request stream). */
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
  /** Mean time the relay actually held a chunk during the measured requests (the emulated one-way latency). */
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
  readonly hops: number;
  readonly nodes: readonly NodeResult[];
  readonly links: readonly LinkResult[];
  /**
   * False when the configuration's links are real network connections (remote nodes): no relay is in their path,
   * so network bytes are not measured and are NaN here (null in JSON), never 0.
   */
  readonly networkMeasured: boolean;
  /** Slowest node's load time: the configuration is usable after this. */
  readonly loadMs: number;
  /** Sum over links of startBytes (NaN when not measured). */
  readonly startBytes: number;
  readonly measurements: readonly Measurement[];
  /** Set when the configuration could not be measured; the others still are. */
  readonly error?: string;
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

export interface BenchReport {
  readonly version: 1;
  readonly startedAt: string;
  readonly model: { readonly path: string; readonly layers: number; readonly fileBytes: number; readonly arch: string };
  readonly machine: { readonly cores: number; readonly cpu: string };
  readonly settings: BenchSweep & {
    readonly nodes: readonly string[];
    readonly ctx: number;
    readonly batch?: number;
    readonly ubatch?: number;
  };
  readonly configs: readonly ConfigResult[];
  readonly hopOverhead: readonly HopOverhead[];
  readonly findings: readonly Finding[];
}
