// One direction of a relayed connection: every chunk is held `delayMs` after it arrived, then written in order.
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

/** Timers are coarse (about 1 ms, late by up to 1 ms), so they cover the wait up to this margin; setImmediate polls the rest. */
const TIMER_MARGIN_MS = 1.5;

interface Held {
  readonly at: number;
  readonly due: number;
  readonly chunk: Buffer;
}

export interface PipeObserver {
  onBytes(n: number): void;
  /** How long a chunk was actually held, for chunks that were delayed at all. */
  onHeld(ms: number): void;
}

export class DelayedPipe {
  private readonly queue: Held[] = [];
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private srcEnded = false;
  private waitingDrain = false;
  private stopped = false;

  constructor(
    private readonly src: Socket,
    private readonly dst: Socket,
    private readonly delayMs: number,
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
    this.queue.length = 0;
    clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
  }

  private push(chunk: Buffer): void {
    if (this.stopped) return;
    this.observer.onBytes(chunk.length);
    if (this.delayMs <= 0 && this.queue.length === 0) {
      this.write(chunk);
      return;
    }
    const at = performance.now();
    this.queue.push({ at, due: at + this.delayMs, chunk });
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped || this.timer || this.immediate || this.queue.length === 0) return;
    const wait = this.queue[0]!.due - performance.now();
    if (wait > TIMER_MARGIN_MS) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.schedule();
      }, wait - TIMER_MARGIN_MS + 0.5);
    } else {
      this.immediate = setImmediate(() => {
        this.immediate = undefined;
        this.flush();
      });
    }
  }

  private flush(): void {
    const now = performance.now();
    while (this.queue.length && this.queue[0]!.due <= now) {
      const held = this.queue.shift()!;
      this.observer.onHeld(now - held.at);
      this.write(held.chunk);
    }
    if (this.queue.length) this.schedule();
    else this.endIfDone();
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
    if (this.srcEnded && this.queue.length === 0 && !this.dst.destroyed) this.dst.end();
  }
}
