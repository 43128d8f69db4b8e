// A promise that rejects with "stopped" when the signal aborts, to race long waits against Ctrl-C.
import { UserError } from '../errors.js';

export function rejectedOnAbort(signal: AbortSignal): Promise<never> {
  const aborted = new Promise<never>((_, reject) => {
    const onAbort = () => reject(new UserError('stopped'));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => undefined); // callers race it; an unobserved rejection must not crash the process
  return aborted;
}
