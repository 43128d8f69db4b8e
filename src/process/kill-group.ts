// Signals a whole process group: a rank's helpers and children must die with it.

/** Sends `signal` to the group led by `pid`; falls back to the pid alone. False when nothing was there. */
export function signalGroup(pid: number, signal: NodeJS.Signals, fallbackToPid = true): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    if (!fallbackToPid) return false;
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  }
}

export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

/** Resolves true if `p` settles within `ms`. */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** SIGTERM the group, wait, then SIGKILL (calling onForce first); always sweeps stragglers left in the group. */
export async function terminateGroup(pid: number, exited: Promise<unknown>, graceMs: number, onForce?: () => void): Promise<boolean> {
  signalGroup(pid, 'SIGTERM');
  const forced = !(await settlesWithin(exited, graceMs));
  if (forced) {
    onForce?.();
    signalGroup(pid, 'SIGKILL');
  }
  await exited.catch(() => undefined);
  // A grandchild that ignored SIGTERM may outlive the leader.
  signalGroup(pid, 'SIGKILL', false);
  return forced;
}
