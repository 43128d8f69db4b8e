// Polls until a TCP port accepts connections; gives up early if `until` settles (the process died).
import net from 'node:net';

export async function waitForPort(
  host: string,
  port: number,
  o: { timeoutMs: number; until?: Promise<unknown>; stepMs?: number },
): Promise<boolean> {
  let gone = false;
  void o.until?.then(() => (gone = true));
  const end = Date.now() + o.timeoutMs;
  while (Date.now() < end && !gone) {
    if (await canConnect(host, port)) return true;
    await new Promise((r) => setTimeout(r, o.stepMs ?? 100));
  }
  return false;
}

export function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
