// What a node has, asked in one remote command: platform, tools, cache dir, free disk, memory, cached builds, Ollama blobs.
// The script and its parser are pure data; provision-nodes.ts runs the script through a Transport.

export interface NodeProbe {
  /** Absolute cache root on the node (binaries, sources, slices live below it). */
  cacheDir: string;
  writable: boolean;
  os: string;
  arch: string;
  /** "glibc 2.36", "musl libc …", or "" when unknown. */
  libc: string;
  /** CPU feature flags (native builds are only portable to the same flags). */
  cpuFlags: string;
  tools: ReadonlySet<string>;
  /** Free bytes in the file system holding cacheDir; undefined when df failed. */
  freeBytes?: number;
  memTotalBytes?: number;
  cpus: number;
  /** Binary keys with an executable llama-server under cacheDir/bin/<key>/. */
  cachedBinaries: ReadonlySet<string>;
  /** Ollama blob path on the node, by sha256 hex digest. */
  blobs: ReadonlyMap<string, string>;
}

export const PROBED_TOOLS = ['cmake', 'git', 'c++', 'g++', 'clang++', 'ninja', 'make', 'sha256sum', 'tar', 'nvcc'] as const;

/** The probe as a `sh -c` script; $1 is the cache dir ('' = the node's default), the rest are blob digests to look for. */
export const PROBE_SCRIPT = [
  'cache=$1; shift',
  '[ -n "$cache" ] || cache=${LLAMA_RELAY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llama-relay}',
  'echo "cache=$cache"',
  'echo "os=$(uname -s)"',
  'echo "arch=$(uname -m)"',
  'echo "libc=$( (getconf GNU_LIBC_VERSION 2>/dev/null || ldd --version 2>&1 | head -n 1) | tr -d "\\n")"',
  'echo "cpu=$(grep -m 1 -E "^(flags|Features)" /proc/cpuinfo 2>/dev/null | sed "s/^[^:]*: *//")"',
  `for t in ${PROBED_TOOLS.join(' ')}; do command -v "$t" >/dev/null 2>&1 && echo "tool=$t"; done`,
  'if mkdir -p "$cache" 2>/dev/null && [ -w "$cache" ]; then echo writable=1; df -Pk "$cache" 2>/dev/null | awk \'NR==2 {print "free_kb=" $4}\'; fi',
  'awk \'/^MemTotal:/ {print "mem_kb=" $2}\' /proc/meminfo 2>/dev/null',
  'echo "cpus=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)"',
  'for d in "$cache"/bin/*/; do [ -x "${d}llama-server" ] && echo "cached=$(basename "$d")"; done',
  'for h in "$@"; do for r in "${OLLAMA_MODELS:-}" "$HOME/.ollama/models" /usr/share/ollama/.ollama/models; do',
  '  [ -n "$r" ] && [ -f "$r/blobs/sha256-$h" ] && { echo "blob=$h $r/blobs/sha256-$h"; break; }',
  'done; done',
  'exit 0',
].join('\n');

export function probeArgv(cacheDir: string | undefined, digests: readonly string[]): string[] {
  return ['sh', '-c', PROBE_SCRIPT, 'probe', cacheDir ?? '', ...digests];
}

export function parseProbe(stdout: string): NodeProbe {
  const tools = new Set<string>();
  const cached = new Set<string>();
  const blobs = new Map<string, string>();
  const one: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const i = line.indexOf('=');
    if (i <= 0) continue;
    const [k, v] = [line.slice(0, i), line.slice(i + 1).trim()];
    if (k === 'tool') tools.add(v);
    else if (k === 'cached') cached.add(v);
    else if (k === 'blob') {
      const sp = v.indexOf(' ');
      if (sp > 0) blobs.set(v.slice(0, sp), v.slice(sp + 1));
    } else one[k] = v;
  }
  const num = (k: string) => (one[k] !== undefined && /^\d+$/.test(one[k]!) ? Number(one[k]) : undefined);
  const kb = (k: string) => (num(k) === undefined ? undefined : num(k)! * 1024);
  const free = kb('free_kb');
  const mem = kb('mem_kb');
  return {
    cacheDir: one.cache ?? '',
    writable: one.writable === '1',
    os: one.os ?? '',
    arch: one.arch ?? '',
    libc: one.libc ?? '',
    cpuFlags: (one.cpu ?? '').split(/\s+/).filter(Boolean).sort().join(' '),
    tools,
    freeBytes: free,
    memTotalBytes: mem,
    cpus: Math.max(1, num('cpus') ?? 1),
    cachedBinaries: cached,
    blobs,
  };
}
