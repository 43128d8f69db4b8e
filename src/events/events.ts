// The one typed event stream from the orchestrator to every renderer (Ink TUI, plain lines, --json lines).

/** One measured request batch of a bench configuration (`parallel` concurrent streaming requests). */
export interface BenchSample {
  /** Per request, in the order sent: request sent → first streamed token, on the client's clock (ms). */
  readonly requestTtftMs: readonly number[];
  /** Sum over requests of the server's prompt tokens/s (aggregate when parallel). */
  readonly prefillTps: number;
  /** All streams' tokens over the wall time of the decode phase (stream-timing.ts decodePhase), tok/s. */
  readonly aggregateDecodeTps: number;
  /** The decode phase: from the moment every request has its first token to the last request's last token (ms). */
  readonly decodeWindowMs: number;
  /** Tokens all streams received in the decode phase. */
  readonly decodeWindowTokens: number;
  /** Per request, in the order sent: its tokens after its first over its own first-to-last-token time, tok/s. */
  readonly requestDecodeTps: readonly number[];
  readonly promptTokens: number;
  readonly generatedTokens: number;
  /** Link bytes (both ways, all links) from the request until every first token. */
  readonly prefillBytes: number;
  /** Link bytes from there to the end. */
  readonly decodeBytes: number;
  /**
   * The tokens decodeBytes paid for: those that arrived after the first-token reading (the kernel's counters are read
   * some ms after the first tokens; a relay's at once). Absent in older reports: every token after each first.
   */
  readonly decodeBytesTokens?: number;
}

export type NodePhase = 'connect' | 'provision' | 'upload' | 'build' | 'load' | 'ready' | 'failed' | 'stopped';

export type RelayEvent =
  /** A rank is assigned: sets up its row before anything happens. */
  | { kind: 'rank-planned'; rank: number; node: string; layers: readonly [number, number]; role: 'head' | 'worker' }
  /** progress is 0..1 for upload/build/load; detail is a short human note. */
  | { kind: 'node-phase'; rank: number; node: string; phase: NodePhase; progress?: number; detail?: string }
  /** The launcher builds (or finishes building) an engine on this machine: scripts/build-llama.sh; progress 0..1. */
  | { kind: 'engine-build'; variant: string; progress: number; detail?: string }
  | { kind: 'memory'; rank: number; rssBytes: number }
  /** Time one activation hop into this rank took. */
  | { kind: 'hop-time'; rank: number; ms: number }
  | { kind: 'token'; text: string }
  | { kind: 'generation-done'; tokens: number; seconds: number }
  /** --interactive: the chat prompt is open (the chain is ready). */
  | { kind: 'chat-ready' }
  /** A message the user sent; its answer streams as `token` events until `chat-done`. */
  | { kind: 'chat-user'; text: string }
  /** The answer to the last chat-user is complete (failed: it broke off; the turn is not kept). */
  | { kind: 'chat-done'; tokens: number; seconds: number; failed?: boolean }
  /** The chat session ended: the user typed /exit or /quit, or stdin reached its end. */
  | { kind: 'chat-end'; reason: 'exit' | 'eof' }
  | { kind: 'api-listening'; url: string; model?: string }
  | { kind: 'requests'; total: number; active: number; failed: number }
  /** The head's per-token chain timing (its /health `chain`), sampled by supervision. */
  | { kind: 'chain-stats'; ranks: readonly { rank: number; computeMsPerToken: number }[]; hopMs: number; roundTripMsPerToken: number; tokens: number }
  /**
   * The chain's decode against the plan's prediction: before launch (measured absent), then as the head's chain timing
   * comes in (measured: its time per decoded token over `tokens` tokens, plus the head's calibrated output part).
   */
  | { kind: 'decode-vs-predicted'; predictedDecodeTps: number; predictedPrefillTps?: number; measuredDecodeTps?: number; tokens?: number }
  /** One generation the API served, from llama-server's own timings; ttftMs: request to first token. */
  | { kind: 'generation-served'; api: 'ollama' | 'openai' | 'llama'; promptTokens: number; outputTokens: number; ttftMs?: number }
  | { kind: 'log'; rank: number; node: string; stream: 'stdout' | 'stderr'; line: string }
  /** A rank's process ended; meaning is e.g. "exit code 137: killed (SIGKILL …)". */
  | {
      kind: 'rank-exited';
      rank: number;
      node: string;
      exitCode: number | null;
      signal: string | null;
      meaning: string;
      lastLines: readonly string[];
      restarting: boolean;
    }
  /**
   * A worker rank whose node stayed lost past --replace-after now runs on a spare (`to`); `restarted`: the ranks
   * restarted to dial its new address (the head's link moves through its relay instead); lostSeconds: since the
   * launcher saw it go.
   */
  /** The head's requests in flight waiting for a lost rank (engine patch 0007), resumed, or failed past its bounds. */
  | { kind: 'resume'; phase: 'waiting' | 'resumed' | 'failed'; requests?: number; rank?: number; detail: string }
  | { kind: 'rank-moved'; rank: number; from: string; to: string; layers: readonly [number, number]; lostSeconds: number; restarted: readonly number[] }
  /** bench: a configuration starts (afresh in every round). */
  | { kind: 'bench-config-start'; id: string; description: string; round?: { index: number; of: number } }
  /** bench: one process of a configuration is ready, loadMs after it was spawned. */
  | { kind: 'bench-process-ready'; id: string; label: string; loadMs: number }
  | { kind: 'bench-sample'; id: string; promptTokens: number; parallel: number; repeat: number; sample: BenchSample }
  | { kind: 'bench-config-done'; id: string }
  | { kind: 'bench-config-failed'; id: string; message: string }
  | { kind: 'info'; message: string }
  | { kind: 'error'; message: string; next?: readonly string[]; rank?: number; node?: string };

export type RelayEventKind = RelayEvent['kind'];
export type EventOf<K extends RelayEventKind> = Extract<RelayEvent, { kind: K }>;

export type Emit = (event: RelayEvent) => void;
