// What a node's own engine and OS say it has: `llama-server --list-devices` (GPUs and accelerators with their memory)
// and the memory available now (/proc/meminfo on Linux; sysctl hw.memsize + vm_stat on macOS). Pure: the script is
// data, and the parsers read its output; provision/probe-devices.ts runs it through a Transport.

const MiB = 1024 * 1024;

export interface Device {
  /** The engine's device name, as `--device` takes it: CUDA0, MTL0, Vulkan0, BLAS. */
  readonly name: string;
  readonly description: string;
  readonly kind: 'gpu' | 'accel';
  readonly totalBytes: number;
  readonly freeBytes: number;
  /** Its memory is the node's RAM (Apple Metal): layers on it do not add to what the node holds. */
  readonly unified: boolean;
}

/** GPU backends by the prefix of their device names (ggml-*: GGML_CUDA_NAME, GGML_METAL_NAME, ...). */
const GPU_PREFIXES = ['CUDA', 'ROCm', 'MTL', 'Vulkan', 'SYCL', 'OpenCL', 'CANN', 'MUSA', 'WebGPU'];

// common/arg.cpp common_print_available_devices():
//   printf("  %s: %s (%zu MiB, %zu MiB free)\n", name, description, total / MiB, free / MiB);
const DEVICE_LINE = /^\s+([A-Za-z][\w.-]*): (.*) \((\d+) MiB, (\d+) MiB free\)\s*$/;

/**
 * The devices in `llama-server --list-devices` output (CPU is never listed; "(none)" means CPU only). Lines that are
 * not devices (backend load logs when stderr is merged) are skipped. Undefined when the header is missing: the binary
 * did not run or is too old to have the flag.
 */
export function parseListDevices(text: string): Device[] | undefined {
  const lines = text.split(/\r?\n/);
  const at = lines.findIndex((l) => l.trim() === 'Available devices:');
  if (at < 0) return undefined;
  const devices: Device[] = [];
  for (const line of lines.slice(at + 1)) {
    const m = DEVICE_LINE.exec(line);
    if (!m) continue;
    const [, name, description, total, free] = m as unknown as [string, string, string, string, string];
    const gpu = GPU_PREFIXES.some((p) => name.startsWith(p));
    devices.push({
      name,
      description,
      kind: gpu ? 'gpu' : 'accel',
      totalBytes: Number(total) * MiB,
      freeBytes: Number(free) * MiB,
      unified: name.startsWith('MTL'),
    });
  }
  return devices;
}

export interface MemoryFigures {
  readonly totalBytes: number;
  /** What can be allocated without swapping: MemAvailable, or free + inactive + speculative pages on macOS. */
  readonly availableBytes: number;
}

/** /proc/meminfo: MemTotal and MemAvailable (kernels before 3.14 lack it: MemFree + Cached then). */
export function parseMeminfo(text: string): MemoryFigures | undefined {
  const kb = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : undefined;
  };
  const total = kb('MemTotal');
  if (total === undefined) return undefined;
  const available = kb('MemAvailable') ?? (kb('MemFree') ?? 0) + (kb('Cached') ?? 0);
  return { totalBytes: total, availableBytes: available };
}

/** macOS: `sysctl -n hw.memsize` (bytes) and `vm_stat` (pages of the size in its header). */
export function parseDarwinMemory(memsize: string, vmStat: string): MemoryFigures | undefined {
  const total = /^\s*(\d+)\s*$/.exec(memsize);
  const page = /page size of (\d+) bytes/.exec(vmStat);
  if (!total || !page) return undefined;
  const pages = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+)\\.?$`, 'm').exec(vmStat);
    return m ? Number(m[1]) : 0;
  };
  // Free pages plus the ones the kernel drops first without writing anything (inactive, speculative).
  const available = (pages('Pages free') + pages('Pages inactive') + pages('Pages speculative')) * Number(page[1]);
  return { totalBytes: Number(total[1]), availableBytes: Math.min(available, Number(total[1])) };
}

/** A cgroup's memory limit (v2 memory.max, v1 memory.limit_in_bytes) and use: what a container may still allocate. */
export function cgroupHeadroom(limit: string, usage: string): number | undefined {
  const l = limit.trim();
  const u = usage.trim();
  if (!/^\d+$/.test(l) || !/^\d+$/.test(u)) return undefined; // "max", or none
  const lim = Number(l);
  if (lim >= 2 ** 62) return undefined; // v1's "no limit" is a huge page-aligned number
  return Math.max(0, lim - Number(u));
}

export interface NodeDevices {
  readonly os: string;
  /** Undefined when the engine could not list them (the memory figures still count). */
  readonly devices?: readonly Device[];
  readonly memory?: MemoryFigures;
  /** Bytes the node's cgroup still allows, when it has a limit. */
  readonly cgroupHeadroom?: number;
  /** The CPU time its cgroup allows, in cores (a quota per period), when it has a limit. */
  readonly cpuQuotaCores?: number;
}

/**
 * A cgroup's CPU quota in cores: v1 `cpu.cfs_quota_us` then `cpu.cfs_period_us` (quota -1: none), or v2 `cpu.max`
 * ("33000 100000"; "max 100000": none).
 */
export function parseCpuQuota(text: string): number | undefined {
  const nums = text.trim().split(/\s+/);
  if (nums.length < 2) return undefined;
  const [quota, period] = nums as [string, string];
  if (!/^\d+$/.test(quota) || !/^\d+$/.test(period) || Number(period) === 0) return undefined;
  return Number(quota) / Number(period);
}

const SECTIONS = ['os', 'devices', 'meminfo', 'memsize', 'vmstat', 'cglimit', 'cgusage', 'cpuquota'] as const;
type Section = (typeof SECTIONS)[number];
const MARK = '@@llama-relay-devices';

/** The probe as a `sh -c` script; $1 is the node's llama-server. Each section is framed by a marker line. */
export const DEVICES_SCRIPT = [
  `m() { echo "${MARK} $1"; }`,
  'm os; uname -s',
  'm devices; "$1" --list-devices 2>/dev/null',
  'm meminfo; cat /proc/meminfo 2>/dev/null',
  'm memsize; sysctl -n hw.memsize 2>/dev/null',
  'm vmstat; vm_stat 2>/dev/null',
  'm cglimit; cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null',
  'm cgusage; cat /sys/fs/cgroup/memory.current 2>/dev/null || cat /sys/fs/cgroup/memory/memory.usage_in_bytes 2>/dev/null',
  // The cpu controller's group of this shell (ranks started the same way inherit it): v1 under cpu/ or cpu,cpuacct/, else v2.
  'm cpuquota; g=$(sed -n "s/^[0-9]*:\\([^:]*,\\)*cpu\\(,[^:]*\\)*:\\(.*\\)$/\\3/p" /proc/self/cgroup 2>/dev/null | head -n 1)',
  'for d in /sys/fs/cgroup/cpu /sys/fs/cgroup/cpu,cpuacct; do [ -n "$g" ] && [ -r "$d$g/cpu.cfs_quota_us" ] && { cat "$d$g/cpu.cfs_quota_us" "$d$g/cpu.cfs_period_us"; g=; }; done',
  'u=$(sed -n "s/^0:://p" /proc/self/cgroup 2>/dev/null); [ -n "$u" ] && [ -r "/sys/fs/cgroup$u/cpu.max" ] && cat "/sys/fs/cgroup$u/cpu.max"',
  'exit 0',
].join('\n');

export const devicesArgv = (binary: string): string[] => ['sh', '-c', DEVICES_SCRIPT, 'devices', binary];

export function parseDevicesProbe(stdout: string): NodeDevices {
  const parts: Partial<Record<Section, string>> = {};
  let current: Section | undefined;
  for (const line of stdout.split('\n')) {
    if (line.startsWith(`${MARK} `)) {
      const s = line.slice(MARK.length + 1).trim();
      current = (SECTIONS as readonly string[]).includes(s) ? (s as Section) : undefined;
      if (current) parts[current] = '';
    } else if (current) parts[current] += `${line}\n`;
  }
  const os = (parts.os ?? '').trim();
  const devices = parseListDevices(parts.devices ?? '');
  const memory = os === 'Darwin' ? parseDarwinMemory(parts.memsize ?? '', parts.vmstat ?? '') : parseMeminfo(parts.meminfo ?? '');
  const headroom = cgroupHeadroom(parts.cglimit ?? '', parts.cgusage ?? '');
  const quota = parseCpuQuota(parts.cpuquota ?? '');
  return {
    os,
    ...(devices ? { devices } : {}),
    ...(memory ? { memory } : {}),
    ...(headroom !== undefined ? { cgroupHeadroom: headroom } : {}),
    ...(quota !== undefined ? { cpuQuotaCores: quota } : {}),
  };
}

/** Bytes of RAM a rank may plan on: what is available now, capped by the node's cgroup limit. */
export function ramBudget(d: NodeDevices): number | undefined {
  const a = d.memory?.availableBytes;
  if (a === undefined) return d.cgroupHeadroom;
  return d.cgroupHeadroom === undefined ? a : Math.min(a, d.cgroupHeadroom);
}

/** The GPU a rank offloads to: the one with the most free memory (one rank per node uses one device). */
export function mainGpu(d: NodeDevices): Device | undefined {
  return [...(d.devices ?? [])].filter((x) => x.kind === 'gpu' && x.freeBytes > 0).sort((a, b) => b.freeBytes - a.freeBytes)[0];
}

/** The budget a node's devices give where it has no mem=: available RAM (cgroup-capped), plus a discrete GPU's free memory. */
export function nodeBudget(d: NodeDevices | undefined): { memory?: number; gpu?: { name: string; freeBytes: number; unified: boolean } } {
  if (!d) return {};
  const ram = ramBudget(d);
  const gpu = mainGpu(d);
  const memory = ram === undefined ? undefined : ram + (gpu && !gpu.unified ? gpu.freeBytes : 0);
  return { ...(memory !== undefined ? { memory } : {}), ...(gpu ? { gpu: { name: gpu.name, freeBytes: gpu.freeBytes, unified: gpu.unified } } : {}) };
}
