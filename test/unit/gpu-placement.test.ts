// GPU nodes without a GPU here: a node whose last probe (the cache file) reported a CUDA device gets its budget from
// RAM + VRAM and its rank's layers on the GPU up to VRAM, shown by `plan`; the launch passes -ngl for that rank only.
// The device outputs are the constructed fixtures of test/fixtures/devices (no GPU run was done).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { nodeBudget, parseDevicesProbe } from '../../src/provision/node-devices.js';
import { planLaunch, type LaunchNode } from '../../src/runtime/launch-plan.js';
import { makeFixture } from '../helpers/fixtures.js';

const cli = new URL('../../bin/llama-relay.js', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'lr-gpu-'));
after(() => rmSync(work, { recursive: true, force: true }));
const fixture = (name: string) => readFileSync(new URL(`../fixtures/devices/${name}`, import.meta.url), 'utf8');
const probeOutput = (devices: string) =>
  `@@llama-relay-devices os\nLinux\n@@llama-relay-devices devices\n${devices}@@llama-relay-devices meminfo\n${fixture('meminfo-linux.txt')}`;
const MiB = 1024 * 1024;

describe('GPU placement', () => {
  it('a CUDA node: budget RAM + VRAM, the GPU named; a Metal node: unified, RAM only; a CPU node: no GPU', () => {
    const ram = Number(/^MemAvailable:\s+(\d+) kB$/m.exec(fixture('meminfo-linux.txt'))![1]) * 1024;
    const cuda = nodeBudget(parseDevicesProbe(probeOutput(fixture('list-devices-cuda-2.txt'))));
    assert.deepEqual(cuda, { memory: ram + 23843 * MiB, gpu: { name: 'CUDA0', freeBytes: 23843 * MiB, unified: false } });
    const metal = nodeBudget(parseDevicesProbe(probeOutput(fixture('list-devices-metal.txt'))));
    assert.deepEqual(metal, { memory: ram, gpu: { name: 'MTL0', freeBytes: 21845 * MiB, unified: true } });
    assert.deepEqual(nodeBudget(parseDevicesProbe(probeOutput(fixture('list-devices-cpu.txt')))), { memory: ram });
  });

  it('plan reads the last probe of each node: the GPU node\'s layers go on its GPU, and the plan says so', async () => {
    const model = await makeFixture({ arch: 'llama', layers: 8 });
    const cache = join(work, 'speeds.json');
    const gpu1 = { ...parseDevicesProbe(probeOutput(fixture('list-devices-cuda-1.txt'))), probedAt: '2026-12-04T20:00:00.000Z' };
    const box = { ...parseDevicesProbe(probeOutput(fixture('list-devices-cpu.txt'))), probedAt: '2026-12-04T20:00:00.000Z' };
    writeFileSync(cache, JSON.stringify({ version: 1, records: [], devices: { gpu1, box } }));
    const { stdout } = await promisify(execFile)(process.execPath, [cli, 'plan', model, '--nodes', 'box,gpu1', '--ctx', '1024'], { env: { ...process.env, LLAMA_RELAY_SPEED_CACHE: cache } });
    assert.match(stdout, /^Node 0: box \(embeddings, output\) Layers: 0 - \d, Estimated Memory: ~[\d.]+ MB of [\d.]+ GB$/m);
    const m = /^Node 1: gpu1 Layers: (\d) - 7, Estimated Memory: ~[\d.]+ MB of [\d.]+ GB\n {2}GPU CUDA0: (\d) of its (\d) layers \(-ngl (\d), ~[\d.]+ [kM]B\)$/m.exec(stdout);
    assert.ok(m, stdout);
    assert.equal(Number(m[3]), 8 - Number(m[1]));
    assert.equal(m[2], m[3]); // 23 GB free holds them all
    assert.equal(m[4], m[2]);
    assert.doesNotMatch(stdout, /^ {2}GPU .*\n.*\n {2}GPU/m); // the CPU node has no GPU line
  });

  it('the launch passes -ngl to the GPU rank only', () => {
    const node = (name: string): LaunchNode => ({ name, stageHost: '127.0.0.1', binary: '/bin/llama-server', model: '/m.gguf' });
    const launches = planLaunch({
      ranks: [{ node: node('box'), layerStart: 0, layerEnd: 2 }, { node: node('gpu1'), layerStart: 2, layerEnd: 8, gpuLayers: 6 }],
      stagePorts: [1, 2],
      api: { host: '127.0.0.1', port: 3 },
      runtime: { ctx: 1024, parallel: 1 },
      runName: 't',
    });
    const argv = (rank: number) => launches.find((l) => l.rank === rank)!.argv.join(' ');
    assert.match(argv(1), / -ngl 6( |$)/);
    assert.doesNotMatch(argv(0), /-ngl/);
  });
});
