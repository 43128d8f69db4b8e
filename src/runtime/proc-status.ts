// Peak resident memory of a process: VmHWM from /proc/PID/status (Linux).
import { readFile } from 'node:fs/promises';

/** Bytes of `VmHWM:  12345 kB`, or undefined. Pure. */
export function parseVmHwm(status: string): number | undefined {
  const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(status);
  return m ? Number(m[1]) * 1024 : undefined;
}

export async function readPeakRss(pid: number | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined;
  try {
    return parseVmHwm(await readFile(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return undefined;
  }
}
