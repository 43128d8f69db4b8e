// One direction of a relayed connection: every chunk is held `delayMs` after it arrived, then written in order.
import type { Socket } from 'node:net';
import { nowMs, type PreciseClock } from './precise-clock.js';

export interface PipeObserver {
  onBytes(n: number): void;
  /** How long a chunk was actually held, for chunks that were delayed at all. */
  onHeld(ms: number): void;
}

export class DelayedPipe {
  private pending = 0;
  private srcEnded = false;
  private waitingDrain = false;
  private stopped = false;

  constructor(
    private readonly src: Socket,
    private readonly dst: Socket,
    private readonly delayMs: number,
    /** Required when delayMs > 0. */
    private readonly clock: PreciseClock | undefined,
    private readonly observer: PipeObserver,
  ) {
    src.on('data', (chunk: Buffer) => this.push(chunk));
    src.on('end', () => {
      this.srcEnded = true;
      this.endIfDone();
    });
  }

  /** Drops whatever is still held; the sockets are the relay's to destroy. */
  stop(): void {
    this.stopped = true;
  }

  private push(chunk: Buffer): void {
    if (this.stopped) return;
    this.observer.onBytes(chunk.length);
    if (this.delayMs <= 0 || !this.clock) {
      this.write(chunk);
      return;
    }
    const at = nowMs();
    this.pending++;
    // Due times only grow and the clock keeps insertion order among equals, so chunks leave in order.
    this.clock.at(at + this.delayMs, () => {
      this.pending--;
      if (this.stopped) return;
      this.observer.onHeld(nowMs() - at);
      this.write(chunk);
      this.endIfDone();
    });
  }

  private write(chunk: Buffer): void {
    if (this.dst.destroyed) return;
    if (!this.dst.write(chunk) && !this.waitingDrain) {
      // Backpressure: stop reading until the slow side has taken what we gave it.
      this.waitingDrain = true;
      this.src.pause();
      this.dst.once('drain', () => {
        this.waitingDrain = false;
        if (!this.stopped) this.src.resume();
      });
    }
  }

  private endIfDone(): void {
    if (this.srcEnded && this.pending === 0 && !this.dst.destroyed) this.dst.end();
  }
}
