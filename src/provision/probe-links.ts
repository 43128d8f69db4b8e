// The IO edge of link latency: time TCP connects from one node to a port another listens on (provision/link-latency.ts).
// From this machine the connects are timed here; from a remote node, by its bash over ssh.
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Transport } from '../ssh/transport.js';
import { LINK_SAMPLES, linkArgv, medianSeconds, parseLinkProbe } from './link-latency.js';

/** One-way seconds from `from` to host:port; undefined when it cannot be measured (no bash 5 there, port closed). */
export async function measureLink(from: Transport, host: string, port: number, signal?: AbortSignal): Promise<number | undefined> {
  if (!from.isLocal) {
    try {
      const { stdout } = await from.exec(linkArgv(host, port), { timeoutMs: 30_000, ...(signal ? { signal } : {}) });
      return parseLinkProbe(stdout);
    } catch {
      return undefined;
    }
  }
  const times: number[] = [];
  for (let i = 0; i < LINK_SAMPLES; i++) {
    const t = await connectSeconds(host, port).catch(() => undefined);
    if (t === undefined) return undefined;
    times.push(t);
  }
  const median = medianSeconds(times);
  return median === undefined ? undefined : median / 2;
}

function connectSeconds(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const s = connect({ host, port });
    s.setTimeout(5000, () => s.destroy(new Error('timeout')));
    s.once('connect', () => {
      const dt = (performance.now() - t0) / 1000;
      s.destroy();
      resolve(dt);
    });
    s.once('error', reject);
  });
}
