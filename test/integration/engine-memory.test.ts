// Memory: a worker reads from disk only its own tensors (no prefetch of the file), and its peak
// resident memory tracks its slice, not the whole model. Also: ranks load rank-slice files exactly.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadGgufModel } from '../../src/gguf/model.js';
import { rankTensors, writeRankSlice } from '../../src/gguf/slice.js';
import getPort from 'get-port';
import { assertSameCompletion, binDirs, commonArgs, complete, startChain, startStock, waitFor } from '../helpers/engine.js';
import { makeFixture } from '../helpers/fixtures.js';
import { repoRoot } from '../helpers/llama-src.js';

const MB = 1024 * 1024;

function procStat(pid: number): { readBytes: number; hwm: number } {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const readBytes = Number(/read_bytes:\s+(\d+)/.exec(io)?.[1]);
  const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]) * 1024;
  return { readBytes, hwm };
}

/** Drop the file's pages from the page cache, so reads show up in read_bytes. */
function evict(path: string) {
  execFileSync('sync');
  execFileSync('dd', [`if=${path}`, 'iflag=nocache', 'count=0', 'status=none']);
  const out = execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', path]).toString().trim();
  assert.ok(Number(out) < 1 * MB, `could not evict ${path} from the page cache (${out} bytes resident)`);
}

const bigFixture = () => makeFixture({ arch: 'llama', layers: 8, embd: 512, heads: 8, headsKv: 4, ff: 1536, seed: 7 });
const RANGES: [number, number][] = [[0, 2], [2, 4], [4, 6], [6, 8]];

/** Byte ranges of the file in the page cache. */
function residentRanges(path: string): [number, number][] {
  const out = execFileSync('python3', [join(repoRoot, 'test/helpers/page_cache.py'), path]).toString();
  return JSON.parse(out) as [number, number][];
}

test('a worker reads from disk only the header and its own tensors', async () => {
  const path = await bigFixture();
  const model = await loadGgufModel(path);
  const headerEnd = model.parts[0]!.dataOffset;
  const { patched } = await binDirs();
  const rows: string[] = [];
  for (const [a, b] of RANGES.slice(1)) {
    const own = rankTensors(model.tensors, { layerStart: a, layerEnd: b, head: false });
    const ownBytes = own.reduce((s, t) => s + t.byteSize, 0);
    // this rank's tensors as merged byte intervals (tensors sit back to back, modulo alignment)
    const spans: [number, number][] = [];
    for (const t of [...own].sort((x, y) => x.fileOffset - y.fileOffset)) {
      const last = spans.at(-1);
      if (last && t.fileOffset - last[1] <= 64) last[1] = t.fileOffset + t.byteSize;
      else spans.push([t.fileOffset, t.fileOffset + t.byteSize]);
    }
    evict(path);
    // a lone worker: it loads, runs the server's start-up probe decode over its layers, and waits
    const [p1, p2] = [await getPort(), await getPort()];
    const secret = join(mkdtempSync(join(tmpdir(), 'relay-mem-')), 's');
    writeFileSync(secret, 'x');
    const child = spawn(join(patched, 'llama-server'), ['-m', path, ...commonArgs, '--layer-range', `${a}:${b}`,
      '--stage-listen', `127.0.0.1:${p1}`, '--stage-next', `127.0.0.1:${p2}`, '--stage-secret-file', secret], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    try {
      await waitFor(() => log.includes('llama-relay: stage ready'), `worker ${a}:${b} ready`, 60_000);
      const { readBytes } = procStat(child.pid!);
      const slack = 4 * MB; // the header read's readahead, before the rank can advise the kernel
      const outside = residentRanges(path).filter(([s, e]) => {
        const inHeader = e <= headerEnd + slack;
        const inOwn = spans.some(([os, oe]) => s >= os - 4096 && e <= oe + 4096);
        return !inHeader && !inOwn;
      });
      const outsideBytes = outside.reduce((n, [s0, e0]) => n + (e0 - s0), 0);
      rows.push(`worker [${a}:${b}]: own tensors ${(ownBytes / MB).toFixed(1)} MB, read_bytes ${(readBytes / MB).toFixed(1)} MB, resident bytes of other ranks: ${outsideBytes}`);
      // at most the file's last page, which the loader touches when it opens the file
      assert.ok(outsideBytes <= 8192, `worker ${a}:${b} pulled other ranks' bytes into memory: ${JSON.stringify(outside)}`);
      assert.ok(readBytes <= ownBytes + headerEnd + slack, `worker ${a}:${b} read ${readBytes} bytes`);
      assert.ok(readBytes >= ownBytes * 0.9, `worker ${a}:${b} read only ${readBytes} bytes: the measurement missed its loads`);
    } finally {
      child.kill('SIGKILL');
    }
  }
  process.stderr.write(`${rows.join('\n')}\n`);
});

test("a worker's peak resident memory tracks its slice, not the model", async () => {
  const path = await bigFixture();
  const model = await loadGgufModel(path);
  const total = model.tensors.reduce((a, t) => a + t.byteSize, 0);

  const stock = await startStock(path);
  await complete(stock.port, { prompt: 'Hello', n_predict: 4 });
  const stockStat = procStat(stock.procs[0]!.child.pid!);
  await stock.stop();
  const overhead = Math.max(0, stockStat.hwm - total); // runtime, KV cache, compute buffers

  const chain = await startChain(path, RANGES);
  try {
    await complete(chain.port, { prompt: 'Hello', n_predict: 4 });
    const rows: string[] = [`stock: peak RSS ${(stockStat.hwm / MB).toFixed(1)} MB for ${(total / MB).toFixed(1)} MB of weights`];
    for (let i = 0; i < RANGES.length; i++) {
      const [a, b] = RANGES[i]!;
      const own = rankTensors(model.tensors, { layerStart: a, layerEnd: b, head: i === 0 }).reduce((s, t) => s + t.byteSize, 0);
      const st = procStat(chain.ranks[i]!.proc.child.pid!);
      rows.push(`rank ${i} [${a}:${b}]: slice ${(own / MB).toFixed(1)} MB, peak RSS ${(st.hwm / MB).toFixed(1)} MB`);
      assert.ok(st.hwm <= own * 1.1 + overhead + 16 * MB, `rank ${i} peak RSS ${st.hwm} does not track its ${own}-byte slice`);
    }
    process.stderr.write(`${rows.join('\n')}\n`);
  } finally {
    await chain.stop();
  }
});

test('ranks loading rank-slice files answer exactly like the full file', async () => {
  const path = await makeFixture({ arch: 'qwen2', layers: 5, embd: 128, heads: 4, headsKv: 2, ff: 256, tied: true });
  const model = await loadGgufModel(path);
  const dir = mkdtempSync(join(tmpdir(), 'relay-slices-'));
  const ranges: [number, number][] = [[0, 2], [2, 3], [3, 5]];
  const slices: string[] = [];
  for (const [i, [a, b]] of ranges.entries()) {
    const out = join(dir, `rank${i}.gguf`);
    await writeRankSlice(model, { layerStart: a, layerEnd: b, head: i === 0 }, out);
    slices.push(out);
  }
  const stock = await startStock(path);
  const want = await complete(stock.port, { prompt: 'The sea is', n_predict: 32 }).finally(() => stock.stop());
  const chain = await startChain(path, ranges, [], { perRankArgs: (i) => ['-m', slices[i]!] });
  try {
    // Each rank loaded its slice, not the full file that is also on its command line: the process maps the slice
    // (the loader mmaps the model it reads) and never the full file.
    for (const [i, r] of chain.ranks.entries()) {
      const mapped = new Set(readFileSync(`/proc/${r.proc.child.pid}/maps`, 'utf8').split('\n').map((l) => l.split(/\s+/).slice(5).join(' ')).filter((f) => f.endsWith('.gguf')));
      assert.deepEqual([...mapped], [slices[i]], `rank ${i} maps ${[...mapped].join(', ')}`);
    }
    assertSameCompletion(want, await complete(chain.port, { prompt: 'The sea is', n_predict: 32 }), 1e-4, 'slices');
  } finally {
    await chain.stop();
  }
});
