// What the bench reads off an inter-node link: its bytes both ways, from a relay in its path (emulated latency) or
// from the kernel's TCP counters (a direct loopback link). measure-batch and run-config read either one way.

export interface LinkCounts {
  /** Client to server (the direction the link was dialled in); NaN when not measured. */
  readonly forwardBytes: number;
  readonly backwardBytes: number;
  readonly connections: number;
  /** Chunks a relay held back to emulate latency (0 on a direct link). */
  readonly heldChunks: number;
  /** Sum over delayed chunks of how long each was held. */
  readonly heldMsSum: number;
}

export interface LinkCounter {
  /** Cumulative since the link came up. */
  snapshot(): LinkCounts | Promise<LinkCounts>;
  close(): Promise<void>;
}
