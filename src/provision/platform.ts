// Which builds run where: a platform is OS, CPU architecture, libc, CPU flags (native builds) and backend.
import { createHash } from 'node:crypto';
import type { NodeProbe } from './node-probe.js';

export interface Platform {
  os: string;
  arch: string;
  libc: string;
  cpuFlags: string;
  backend: 'cpu' | 'cuda' | 'metal';
}

export function platformOf(p: NodeProbe): Platform {
  const backend = p.os === 'Darwin' ? 'metal' : p.tools.has('nvcc') ? 'cuda' : 'cpu';
  return { os: p.os, arch: p.arch, libc: p.libc, cpuFlags: p.cpuFlags, backend };
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** The key a binary is cached under on a node: the engine source (pin + patches) and the platform it was built for. */
export function binaryKey(sourceKey: string, p: Platform): string {
  return sha(JSON.stringify([sourceKey, p.os, p.arch, p.libc, sha(p.cpuFlags), p.backend])).slice(0, 20);
}

/** A one-line description for messages: "Linux x86_64 glibc 2.36 cpu". */
export function describePlatform(p: Platform): string {
  return [p.os, p.arch, p.libc || 'unknown libc', p.backend].join(' ');
}

/** Why a binary built on `a` may not run on `b`, or undefined when they match. */
export function platformMismatch(a: Platform, b: Platform): string | undefined {
  if (a.os !== b.os || a.arch !== b.arch) return `${a.os} ${a.arch} vs ${b.os} ${b.arch}`;
  if (a.libc !== b.libc) return `${a.libc || 'unknown libc'} vs ${b.libc || 'unknown libc'}`;
  if (a.backend !== b.backend) return `backend ${a.backend} vs ${b.backend}`;
  if (a.cpuFlags !== b.cpuFlags) return 'different CPU features (the build is native to its CPU)';
  return undefined;
}
