// Sub-millisecond timers without spinning. libuv timers have 1 ms granularity (a 1 ms link delay would land
// anywhere in 1-2 ms), and polling with setImmediate burns a core the measured processes need. A helper
// thread sleeps in Atomics.wait (a futex with a fractional-ms timeout) until the earliest due time and then
// wakes the event loop with a message. Waking a thread costs about 0.2 ms on a VM, so the clock learns
// that lateness and wakes that much early (at most 0.5 ms), keeping the mean release time on the due time.
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { performance } = require('node:perf_hooks');
const gen = new Int32Array(workerData, 0, 2);
const due = new Float64Array(workerData, 8, 1);
let fired = -1;
for (;;) {
  const g = Atomics.load(gen, 0);
  if (Atomics.load(gen, 1) === 1) break;
  const d = due[0];
  if (g === fired || !Number.isFinite(d)) { Atomics.wait(gen, 0, g); continue; }
  const left = d - (performance.timeOrigin + performance.now());
  if (left > 0) { Atomics.wait(gen, 0, g, left); continue; }
  fired = g;
  parentPort.postMessage(g);
}
`;

/** Wall-clock milliseconds with sub-ms resolution, comparable across threads. */
export const nowMs = (): number => performance.timeOrigin + performance.now();

interface Entry {
  readonly due: number;
  readonly run: () => void;
}

export class PreciseClock {
  private readonly shared = new SharedArrayBuffer(16);
  private readonly gen = new Int32Array(this.shared, 0, 2);
  private readonly due = new Float64Array(this.shared, 8, 1);
  private readonly worker: Worker;
  private entries: Entry[] = [];
  private closed = false;
  /** How early to wake, learned from how late wake-ups land. */
  private leadMs = 0;

  constructor() {
    this.due[0] = Number.POSITIVE_INFINITY;
    this.worker = new Worker(WORKER, { eval: true, workerData: this.shared });
    this.worker.on('message', () => this.fire());
    this.worker.on('error', () => undefined);
    // Never what keeps the process alive.
    this.worker.unref();
  }

  /** Runs `run` at about wall-clock time `due` (nowMs() units). Order among equal due times is kept. */
  at(due: number, run: () => void): void {
    if (this.closed) return;
    let i = this.entries.length;
    while (i > 0 && this.entries[i - 1]!.due > due) i--;
    this.entries.splice(i, 0, { due, run });
    if (i === 0) this.arm();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.entries = [];
    Atomics.store(this.gen, 1, 1);
    Atomics.add(this.gen, 0, 1);
    Atomics.notify(this.gen, 0);
    void this.worker.terminate();
  }

  private arm(): void {
    this.due[0] = (this.entries[0]?.due ?? Number.POSITIVE_INFINITY) - this.leadMs;
    Atomics.add(this.gen, 0, 1);
    Atomics.notify(this.gen, 0);
  }

  private fire(): void {
    const now = nowMs();
    const ready: Entry[] = [];
    while (this.entries.length && this.entries[0]!.due - this.leadMs <= now) ready.push(this.entries.shift()!);
    if (ready.length) this.leadMs = Math.min(0.5, Math.max(0, this.leadMs + 0.2 * (now - ready[0]!.due)));
    this.arm();
    for (const e of ready) e.run();
  }
}
