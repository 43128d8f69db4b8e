// Plain and --json output get progress (engine builds, uploads, builds on nodes, loads) every 10% or every 30 s,
// whichever comes first, instead of every step the TUI draws. A filter between the bus and a line renderer; the clock
// is a parameter so the rule is testable without waiting.
import type { Listener } from './event-bus.js';
import type { RelayEvent } from './events.js';

const PROGRESS_PHASES = new Set(['upload', 'build', 'load']);

export interface ThrottleOptions {
  now?: () => number;
  /** Progress step that always shows (0.1 = every 10%). */
  step?: number;
  /** A task still running shows at least this often (ms), with its latest progress. */
  everyMs?: number;
  /** How often the heartbeat looks (ms). */
  tickMs?: number;
}

interface Task {
  shownAt: number;
  shownProgress: number | undefined;
  latest: RelayEvent & ({ kind: 'node-phase' } | { kind: 'engine-build' });
  startedAt: number;
}

/** Wraps `out`: returns the listener to subscribe to the bus, and stop() for its timer. */
export function throttleProgress(out: Listener, o: ThrottleOptions = {}): { listener: Listener; tick(): void; stop(): void } {
  const now = o.now ?? Date.now;
  const step = o.step ?? 0.1;
  const every = o.everyMs ?? 30_000;
  const tasks = new Map<string, Task>();
  const show = (key: string, e: Task['latest'], t: number) => {
    const prev = tasks.get(key);
    tasks.set(key, { shownAt: t, shownProgress: e.progress, latest: e, startedAt: prev?.startedAt ?? t });
    out(e);
  };
  const listener: Listener = (e) => {
    const t = now();
    const key = e.kind === 'engine-build' ? `build:${e.variant}` : e.kind === 'node-phase' ? `rank:${e.rank}` : undefined;
    if (key === undefined || (e.kind === 'node-phase' && !PROGRESS_PHASES.has(e.phase))) {
      if (key) tasks.delete(key); // the rank moved on (ready, failed, …): always shown
      out(e);
      return;
    }
    const task = tasks.get(key);
    const ev = e as Task['latest'];
    // A rank's new phase, or a new item in it (the binary, then a slice), starts a new task.
    const samePhase = task && (ev.kind !== 'node-phase' || (task.latest.kind === 'node-phase' && task.latest.phase === ev.phase && task.latest.detail === ev.detail));
    if (!task || !samePhase) return show(key, ev, t);
    const p = ev.progress;
    const last = task.shownProgress;
    const crossed = p !== undefined && (p >= 1 || last === undefined || Math.floor(p / step + 1e-9) > Math.floor(last / step + 1e-9));
    if (crossed || t - task.shownAt >= every) return show(key, ev, t);
    tasks.set(key, { ...task, latest: ev });
  };
  // A task with no news for `every` ms (a model that loads without progress lines) still gets a line.
  const tick = () => {
    const t = now();
    for (const [key, task] of tasks) {
      if (t - task.shownAt < every || (task.latest.progress ?? 0) >= 1) continue;
      const secs = Math.round((t - task.startedAt) / 1000);
      const base = task.latest.detail ? `${task.latest.detail}; ` : '';
      show(key, { ...task.latest, detail: `${base}${secs} s so far` }, t);
      tasks.set(key, { ...tasks.get(key)!, latest: task.latest });
    }
  };
  const timer = setInterval(tick, o.tickMs ?? 5000);
  timer.unref();
  return { listener, tick, stop: () => clearInterval(timer) };
}
