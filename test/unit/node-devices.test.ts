// Device and memory parsing on captured (CPU-only Linux) and source-constructed (CUDA, Metal, macOS memory) outputs;
// test/fixtures/devices/README.md says which is which. The probe itself runs here through the local transport.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { cgroupHeadroom, mainGpu, parseDarwinMemory, parseDevicesProbe, parseListDevices, parseMeminfo, ramBudget } from '../../src/provision/node-devices.js';
import { probeNodeDevices } from '../../src/provision/probe-devices.js';
import { LocalTransport } from '../../src/ssh/local-transport.js';
import { binDirs } from '../helpers/engine.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/devices/${name}`, import.meta.url), 'utf8');
const MiB = 1024 * 1024;

describe('llama-server --list-devices', () => {
  it('parses CPU-only, one and two CUDA GPUs, and Apple Metal', () => {
    const rows: [string, { name: string; description: string; kind: string; total: number; free: number; unified: boolean }[]][] = [
      ['list-devices-cpu.txt', []],
      ['list-devices-cuda-1.txt', [{ name: 'CUDA0', description: 'NVIDIA GeForce RTX 4090', kind: 'gpu', total: 24080, free: 23664, unified: false }]],
      [
        'list-devices-cuda-2.txt',
        [
          { name: 'CUDA0', description: 'NVIDIA GeForce RTX 3090', kind: 'gpu', total: 24154, free: 23843, unified: false },
          { name: 'CUDA1', description: 'NVIDIA GeForce RTX 3060', kind: 'gpu', total: 12078, free: 11911, unified: false },
        ],
      ],
      [
        'list-devices-metal.txt',
        [
          { name: 'MTL0', description: 'Apple M2 Pro', kind: 'gpu', total: 21845, free: 21845, unified: true },
          { name: 'BLAS', description: 'Accelerate', kind: 'accel', total: 0, free: 0, unified: false },
        ],
      ],
    ];
    for (const [file, want] of rows) {
      const got = parseListDevices(fixture(file));
      assert.deepEqual(
        got?.map((d) => ({ name: d.name, description: d.description, kind: d.kind, total: d.totalBytes / MiB, free: d.freeBytes / MiB, unified: d.unified })),
        want,
        file,
      );
    }
  });

  it('no header (the binary did not run, or predates the flag) is unknown, not "no devices"', () => {
    assert.equal(parseListDevices(''), undefined);
    assert.equal(parseListDevices('error: invalid argument: --list-devices\n'), undefined);
    assert.deepEqual(parseListDevices('Available devices:\r\n  (none)\r\n'), []);
  });

  it('the rank offloads to the GPU with the most free memory; an accelerator without memory is no GPU', () => {
    const two = { os: 'Linux', devices: parseListDevices(fixture('list-devices-cuda-2.txt'))! };
    assert.equal(mainGpu(two)?.name, 'CUDA0');
    assert.equal(mainGpu({ os: 'Darwin', devices: parseListDevices(fixture('list-devices-metal.txt'))! })?.name, 'MTL0');
    assert.equal(mainGpu({ os: 'Linux', devices: [] }), undefined);
  });
});

describe('available memory', () => {
  it('Linux /proc/meminfo (captured): MemTotal and MemAvailable', () => {
    const m = parseMeminfo(fixture('meminfo-linux.txt'))!;
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(fixture('meminfo-linux.txt'))![1]) * 1024;
    assert.deepEqual(m, { totalBytes: kb('MemTotal'), availableBytes: kb('MemAvailable') });
    // Kernels before 3.14 have no MemAvailable: free + page cache.
    assert.deepEqual(parseMeminfo('MemTotal:  1000 kB\nMemFree:  100 kB\nCached:  50 kB\n'), { totalBytes: 1024000, availableBytes: 153600 });
    assert.equal(parseMeminfo('garbage'), undefined);
  });

  it('macOS: hw.memsize and vm_stat free + inactive + speculative pages', () => {
    const m = parseDarwinMemory(fixture('darwin-memsize.txt'), fixture('darwin-vmstat.txt'))!;
    assert.equal(m.totalBytes, 17179869184);
    assert.equal(m.availableBytes, (3575 + 266185 + 2335) * 16384);
    assert.equal(parseDarwinMemory('', fixture('darwin-vmstat.txt')), undefined);
    assert.equal(parseDarwinMemory('17179869184', 'no header'), undefined);
  });

  it('a cgroup memory limit caps the budget; v2 "max" and v1 "no limit" do not', () => {
    assert.equal(cgroupHeadroom('4294967296\n', '1073741824\n'), 3 * 1024 ** 3);
    assert.equal(cgroupHeadroom('max\n', '1073741824\n'), undefined);
    assert.equal(cgroupHeadroom('9223372036854771712\n', '5\n'), undefined);
    assert.equal(cgroupHeadroom('', ''), undefined);
    assert.equal(ramBudget({ os: 'Linux', memory: { totalBytes: 10, availableBytes: 8 }, cgroupHeadroom: 5 }), 5);
    assert.equal(ramBudget({ os: 'Linux', memory: { totalBytes: 10, availableBytes: 8 } }), 8);
  });
});

describe('the device probe on a node', () => {
  it('the captured whole-probe output of this machine parses to Linux, no devices, its memory', () => {
    const d = parseDevicesProbe(fixture('probe-linux-cpu.txt'));
    assert.equal(d.os, 'Linux');
    assert.deepEqual(d.devices, []);
    assert.ok(d.memory && d.memory.availableBytes > 0 && d.memory.availableBytes <= d.memory.totalBytes);
    assert.equal(d.cgroupHeadroom, undefined);
  });

  it('runs through the local transport with the patched llama-server and agrees with /proc/meminfo', async () => {
    const binary = `${(await binDirs()).patched}/llama-server`;
    const d = await probeNodeDevices(new LocalTransport(), binary);
    assert.equal(d.os, 'Linux');
    assert.deepEqual(d.devices, []); // this machine has no GPU
    const total = parseMeminfo(readFileSync('/proc/meminfo', 'utf8'))!.totalBytes;
    assert.equal(d.memory?.totalBytes, total);
    // A binary that does not exist lists nothing: unknown devices, memory still known.
    const none = await probeNodeDevices(new LocalTransport(), '/nonexistent/llama-server');
    assert.equal(none.devices, undefined);
    assert.equal(none.memory?.totalBytes, total);
  });
});
