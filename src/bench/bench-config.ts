// What a bench run measures, as plain data: the nodes, the runtime every server shares, and the
// configurations (stock, llama-relay chains, llama.cpp RPC) the planner derives from them.
import type { RunNode } from '../runtime/node-hosts.js';

/** A machine the bench runs processes on (the runtime's node: this one, or one reached over ssh). */
export type BenchNode = RunNode;

export type ConfigKind = 'stock' | 'chain' | 'rpc';

/** One process of a configuration and the layers it computes (half-open). */
export interface RankPlan {
  /** Index into the run's nodes. */
  readonly node: number;
  readonly layers: readonly [number, number];
  /** CPU core for `taskset -c`, when pinning. */
  readonly core?: number;
}

export interface BenchConfig {
  /** Stable id used in JSON, the table and the chart: stock, chain-3, chain-3-nopipe, chain-3-nomb, chain-3-nogroups, chain-3-nopoll, rpc-3 (config-id.ts). */
  readonly id: string;
  readonly kind: ConfigKind;
  readonly description: string;
  /** Rank 0 is the head (HTTP, embeddings, output); for rpc, ranks 1.. are ggml-rpc-servers. */
  readonly ranks: readonly RankPlan[];
  /** Chain only: false adds --stage-no-pipeline to the head. */
  readonly pipeline: boolean;
  /** Chain only: false adds --stage-no-encrypt to every rank (to put a price on link encryption). */
  readonly encrypt?: boolean;
  /** Chain only: false adds --stage-no-microbatch to the head (no micro-batched decode across requests). */
  readonly microbatch?: boolean;
  /** Chain only: adds --stage-groups N to the head (1: slot groups off, chain-N-nogroups); undefined: the engine default. */
  readonly groups?: number;
  /** Chain only: --stage-batch-groups N on the head (0 in chain-N-nobatch: off); undefined: off. */
  readonly batchGroupsFrom?: number;
  /** Chain only: false: no rank busy-polls its links (chain-N-nopoll); otherwise ranks with a core to themselves do. */
  readonly poll?: boolean;
  /** One-way link traversals per decoded token at least: a ring of k ranks has k, RPC a round trip per remote. */
  readonly hops: number;
}

/** Settings every server of every configuration shares, so they compute the same thing. */
export interface BenchRuntime {
  readonly threads: number;
  /** Total context (llama-server -c), all slots. */
  readonly ctx: number;
  /** Slots (llama-server -np): the largest --parallel value. */
  readonly slots: number;
  readonly batch?: number;
  readonly ubatch?: number;
}

/** What a bench run sweeps and how: shared by the request, the planner and the report. */
export interface BenchSweep {
  readonly promptTokens: readonly number[];
  readonly genTokens: number;
  readonly parallel: readonly number[];
  readonly repeat: number;
  readonly linkLatencyMs: number;
  readonly threads: number;
  readonly taskset: boolean;
}

export interface BenchOptions extends BenchSweep {
  readonly nodes: readonly BenchNode[];
  /** Cores available for --taskset. */
  readonly cores: number;
  readonly rpc: boolean;
  readonly stock: boolean;
  /** --groups N: the chains' heads keep up to N slot groups in flight (--stage-groups; chain-N-nogroups still 1); undefined: the engine default. */
  readonly groups?: number;
  /** Per rank count K: the K-rank chains' heads batch their groups from this many generating requests (0 or absent: off; chain-K-nobatch: off). */
  readonly batchGroups?: ReadonlyMap<number, number>;
  /** Only these configuration ids, when given. */
  readonly only?: readonly string[];
  /** The user's split over all the nodes (--split, --layers-per-node, layers=): the N-rank configurations use it. */
  readonly split?: readonly (readonly [number, number])[];
  /**
   * Per rank count, the split `up` launches on ranks of one speed (the head's output layer counted: planOneSpeed);
   * a count without one is split evenly. The user's split wins for the N-rank configurations.
   */
  readonly placement?: ReadonlyMap<number, readonly (readonly [number, number])[]>;
  readonly batch?: number;
  readonly ubatch?: number;
}
