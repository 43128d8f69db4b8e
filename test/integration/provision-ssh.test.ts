// Provisioning over a real sshd: building a shipped source tree on the node (a tiny stand-in CMake project), copying
// the local patched build, pushing slices with resume and digest checks, and preflight failures that name the node.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { UserError } from '../../src/errors.js';
import type { RelayEvent } from '../../src/events/events.js';
import { loadGgufModel } from '../../src/gguf/model.js';
import { localSlice } from '../../src/provision/local-files.js';
import { pushSlice } from '../../src/provision/remote-slice.js';
import { makeControlDir, SshTransport } from '../../src/ssh/ssh-transport.js';
import { LocalTransport } from '../../src/ssh/local-transport.js';
import type { Transport } from '../../src/ssh/transport.js';
import { engineSourceKey, localEngine } from '../../src/provision/local-engine.js';
import { provision, type ProvisionRequest } from '../../src/provision/provision-nodes.js';
import { binDirs } from '../helpers/engine.js';
import { makeFixture } from '../helpers/fixtures.js';
import { skipOrFail } from '../helpers/prereq.js';
import { pidsMatching, survivorsAfter, uniqueMarker, waitFor } from '../helpers/processes.js';
import { startSshd, type TestSshd } from '../helpers/sshd.js';

let sshd: TestSshd;
let control: { dir: string; remove: () => void };
let node: SshTransport;
const work = mkdtempSync('/tmp/lr-prov-');
const mounts: string[] = [];

before(async () => {
  sshd = await startSshd();
  control = makeControlDir();
  node = new SshTransport({ name: sshd.alias, host: sshd.alias }, { controlDir: control.dir, configFile: sshd.configFile });
  await node.connect();
});
after(async () => {
  await node?.close();
  control?.remove();
  for (const m of mounts) {
    try {
      execFileSync('umount', [m]);
    } catch {
      /* already gone */
    }
  }
  await sshd?.stop();
  rmSync(work, { recursive: true, force: true });
});

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

/** A stand-in for the llama.cpp tree: a CMake project whose `llama-server` prints a fixed line. */
function standInSource(dir: string, files = 6): string {
  mkdirSync(dir, { recursive: true });
  const names = Array.from({ length: files }, (_, i) => `part${i}.c`);
  for (const [i, n] of names.entries()) writeFileSync(join(dir, n), `int part${i}(void) { return ${i}; }\n`);
  writeFileSync(
    join(dir, 'main.c'),
    `#include <stdio.h>\n${names.map((_, i) => `int part${i}(void);`).join('\n')}\nint main(void) { int s = 0; ${names.map((_, i) => `s += part${i}();`).join(' ')} printf("stand-in llama-server %d\\n", s); return 0; }\n`,
  );
  writeFileSync(
    join(dir, 'CMakeLists.txt'),
    `cmake_minimum_required(VERSION 3.14)\nproject(standin C)\nset(CMAKE_RUNTIME_OUTPUT_DIRECTORY \${CMAKE_BINARY_DIR}/bin)\nadd_executable(llama-server main.c ${names.join(' ')})\n`,
  );
  mkdirSync(join(dir, '.git'));
  writeFileSync(join(dir, '.git', 'HEAD'), 'must not be shipped\n');
  return dir;
}

function baseRequest(over: Partial<ProvisionRequest> & { events: RelayEvent[] }): ProvisionRequest {
  const model = join(work, 'given-model.gguf');
  if (!existsSync(model)) writeFileSync(model, 'x');
  const transports = new Map<string, Transport>([['local', new LocalTransport()], [node.name, node]]);
  const { events, ...rest } = over;
  return {
    ranks: [
      { rank: 0, node: 'local', layerStart: 0, layerEnd: 2 },
      { rank: 1, node: node.name, layerStart: 2, layerEnd: 4 },
    ],
    transports,
    binary: { path: '/bin/true' },
    model: { path: model },
    runDir: join(work, 'run'),
    emit: (e) => events.push(e),
    ...rest,
  };
}

const phases = (events: RelayEvent[], phase: string) =>
  events.flatMap((e) => (e.kind === 'node-phase' && e.phase === phase && e.node === 'relaynode' ? [e.progress ?? -1] : []));

describe('binary provisioning over ssh', { timeout: 300_000 }, () => {
  it('ships the source as a tar stream, builds it on the node with build % events, and reuses the cached build', async () => {
    const src = standInSource(join(work, 'standin-src'));
    const cache = join(work, 'node-cache-build');
    const engine = { sourceKey: 'standin-1', source: { dir: src, bytes: 4096 }, buildOverheadBytes: 1e6 };
    const events: RelayEvent[] = [];
    const req = baseRequest({ events, binary: { engine, local: '/bin/true' }, nodeCacheDir: cache, cmakeFlags: () => ['-DCMAKE_BUILD_TYPE=Release'] });
    const r = await provision(req);
    const bin = r.ranks[1]!.binary;
    assert.match(bin, new RegExp(`^${cache}/bin/[0-9a-f]{20}/llama-server$`));
    assert.equal(r.ranks[0]!.binary, '/bin/true', 'the local rank keeps the local build');
    assert.equal(r.plans.get('relaynode')!.binary!.kind, 'build');
    assert.match(execFileSync(bin, { encoding: 'utf8' }), /stand-in llama-server 15/);
    const shipped = readdirSync(join(cache, 'src'))[0]!;
    assert.ok(!existsSync(join(cache, 'src', shipped, '.git')), '.git is not shipped');
    const build = phases(events, 'build');
    assert.ok(build.length >= 3, `build % events: ${build}`);
    assert.equal(build.at(-1), 1);
    assert.deepEqual([...build].sort((a, b) => a - b), build, 'build % only goes up');
    assert.ok(phases(events, 'upload').length >= 1, 'upload % of the source');

    const again: RelayEvent[] = [];
    const r2 = await provision({ ...req, emit: (e) => again.push(e) });
    assert.equal(r2.ranks[1]!.binary, bin);
    assert.equal(r2.plans.get('relaynode')!.binary!.kind, 'reuse');
    assert.deepEqual(phases(again, 'build'), []);
    assert.deepEqual(phases(again, 'upload'), []);
    assert.equal(r2.sent.get('relaynode'), 0);
  });

  it('stopping a build midway leaves no build process on the node', async () => {
    const marker = uniqueMarker('lrbuild');
    const src = standInSource(join(work, 'standin-slow'));
    // One slow build step whose argv carries the marker.
    writeFileSync(
      join(src, 'CMakeLists.txt'),
      readFileSync(join(src, 'CMakeLists.txt'), 'utf8') +
        `add_custom_command(OUTPUT slow.h COMMAND sh -c "sleep 120 # ${marker}" COMMAND \${CMAKE_COMMAND} -E touch slow.h)\nadd_custom_target(slow ALL DEPENDS slow.h)\nadd_dependencies(llama-server slow)\n`,
    );
    const ac = new AbortController();
    const events: RelayEvent[] = [];
    const engine = { sourceKey: 'standin-slow', source: { dir: src, bytes: 4096 }, buildOverheadBytes: 0 };
    const run = provision(
      baseRequest({ events, binary: { engine, local: '/bin/true' }, nodeCacheDir: join(work, 'node-cache-slow'), cmakeFlags: () => [], signal: ac.signal }),
    ).then(() => undefined, (e: unknown) => e);
    assert.ok(await waitFor(() => pidsMatching(marker).length > 0, 60_000), 'the slow step never started');
    ac.abort();
    const err = await run;
    assert.ok(err instanceof UserError && /build of llama-server was stopped/.test(err.message), String(err));
    assert.deepEqual(await survivorsAfter(marker, 10_000), []);
  });

  it('ships the real patched llama.cpp tree and starts building it (stopped after the first build %, nothing left running)', async (t) => {
    // The build scripts/build-llama.sh made (or finds cached) for the current pin and patches: no guessed directory names.
    const built = join((await binDirs()).patched, 'llama-server');
    const local = await localEngine(built);
    // build-llama.sh leaves the shared tree patched; another build switching it back to stock is the one reason to skip.
    if (!local.source) return skipOrFail(t, `the llama.cpp tree is not in the patched state (${engineSourceKey().key})`, 'run scripts/build-llama.sh --patched-only');
    // No local binary: the node must build (a cold build takes ~15 min on 2 cores, so stop at the first build %).
    const { localBinary: _drop, ...engine } = local;
    const marker = uniqueMarker('lrreal');
    const cache = join(work, `${marker}-cache`);
    const ac = new AbortController();
    const events: RelayEvent[] = [];
    const req = baseRequest({ events, binary: { engine, local: built }, nodeCacheDir: cache, signal: ac.signal });
    const emit = (e: RelayEvent) => {
      events.push(e);
      if (e.kind === 'node-phase' && e.phase === 'build' && (e.progress ?? 0) > 0) ac.abort();
    };
    const err = await provision({ ...req, emit }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof UserError && /build of llama-server was stopped/.test(err.message), String(err));
    assert.equal(phases(events, 'upload').at(-1), 1, 'the whole tree was sent');
    assert.ok(phases(events, 'build').some((p) => p > 0), 'build % from ninja');
    const shipped = join(cache, 'src', readdirSync(join(cache, 'src'))[0]!);
    assert.ok(existsSync(join(shipped, 'tools/server/server.cpp')) || existsSync(join(shipped, 'examples/server/server.cpp')));
    assert.ok(!existsSync(join(shipped, '.git')));
    assert.ok(readFileSync(join(cache, 'build', readdirSync(join(cache, 'build'))[0]!, 'CMakeCache.txt'), 'utf8').includes('GGML_RPC:BOOL=ON'));
    assert.deepEqual(await survivorsAfter(marker, 10_000), []);
  });

  it('copies the local patched build when the platform matches', async () => {
    // The build scripts/build-llama.sh made (or finds cached) for the current pin and patches.
    const built = join((await binDirs()).patched, 'llama-server');
    const engine = await localEngine(built);
    const cache = join(work, 'node-cache-copy');
    const events: RelayEvent[] = [];
    const r = await provision(baseRequest({ events, binary: { engine, local: built }, nodeCacheDir: cache }));
    assert.equal(r.plans.get('relaynode')!.binary!.kind, 'copy');
    const bin = r.ranks[1]!.binary;
    assert.equal(sha(bin), sha(built));
    assert.ok(statSync(bin).mode & 0o100, 'executable');
    execFileSync(bin, ['--version'], { stdio: 'pipe' }); // runs on the node
    assert.ok(readFileSync(bin).includes('--stage-listen'), 'the patched build');
    assert.equal(phases(events, 'upload').at(-1), 1);
  });

  it('a node without cmake, a compiler or git: preflight names the node and the packages, nothing is uploaded', async () => {
    const bin = join(work, 'nocmake-bin');
    mkdirSync(bin);
    const hidden = new Set(['cmake', 'c++', 'g++', 'gcc', 'cc', 'clang++', 'git']);
    for (const f of readdirSync('/usr/bin')) if (!hidden.has(f) && !/^(g\+\+|c\+\+|x86_64-linux-gnu-g\+\+)/.test(f)) symlinkSync(`/usr/bin/${f}`, join(bin, f));
    const cache = join(work, 'node-cache-nocmake');
    const src = standInSource(join(work, 'standin-src2'));
    const events: RelayEvent[] = [];
    const err = await provision(
      baseRequest({ events, binary: { engine: { sourceKey: 'standin-2', source: { dir: src, bytes: 4096 }, buildOverheadBytes: 0 }, local: '/bin/true' }, nodeCacheDir: cache, nodeEnv: { PATH: bin } }),
    ).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof UserError, String(err));
    assert.match(err.message, /node relaynode: must build llama-server from source .* but cmake, a C\+\+ compiler, git are not installed/);
    assert.match(err.next.join('\n'), /node relaynode: install .*apt-get install cmake build-essential git/);
    assert.ok(!existsSync(join(cache, 'src')), 'nothing uploaded');
    assert.ok(events.some((e) => e.kind === 'node-phase' && e.phase === 'failed'));
  });
});

describe('memory preflight over ssh', () => {
  it('ranks that cannot fit in the node memory are named before anything is uploaded', async () => {
    const events: RelayEvent[] = [];
    const err = await provision(
      baseRequest({ events, memoryNeeded: new Map([[node.name, 1e15]]), binary: { path: '/bin/true' }, nodeCacheDir: join(work, 'node-cache-mem') }),
    ).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof UserError, String(err));
    assert.match(err.message, /node relaynode: its ranks need about 1000\.0 TB of memory but it has [\d.]+ GB in total/);
    assert.match(err.next.join('\n'), /node relaynode: give it fewer layers/);
  });
});

describe('slice provisioning over ssh', { timeout: 300_000 }, () => {
  let modelPath: string;
  before(async () => {
    modelPath = await makeFixture({ arch: 'llama', layers: 4, embd: 256, ff: 1024, seed: 7 });
  });

  it('pushes only the rank slice, verified on the node, and uses the node Ollama blob when it has one', async () => {
    const gguf = await loadGgufModel(modelPath);
    const cache = join(work, 'node-cache-slices');
    const localCache = join(work, 'local-cache');
    const events: RelayEvent[] = [];
    const req = baseRequest({ events, model: { path: modelPath, gguf }, nodeCacheDir: cache, localCacheDir: localCache });
    const r = await provision(req);
    const remote = r.ranks[1]!.model;
    assert.match(remote, new RegExp(`^${cache}/slices/.*-L2-4\\.gguf$`));
    const local = join(localCache, 'slices', remote.slice(remote.lastIndexOf('/') + 1));
    assert.equal(sha(remote), sha(local));
    assert.ok(statSync(remote).size < statSync(modelPath).size * 0.8, 'a slice, not the model');
    assert.equal(r.ranks[0]!.model, modelPath);
    assert.equal(phases(events, 'upload').at(-1), 1);
    const again = await provision({ ...req, emit: () => undefined });
    assert.equal(again.sent.get('relaynode'), 0, 'a verified slice on the node is not sent again');

    // The node's own Ollama store holds the model blob: nothing is pushed.
    const store = join(work, 'ollama-store');
    mkdirSync(join(store, 'blobs'), { recursive: true });
    const digest = sha(modelPath);
    symlinkSync(modelPath, join(store, 'blobs', `sha256-${digest}`));
    // No digest given: a plain file is hashed once (kept in the local cache) to find it there.
    const info: string[] = [];
    const o = await provision({ ...req, nodeEnv: { OLLAMA_MODELS: store }, emit: (e) => e.kind === 'info' && info.push(e.message) });
    assert.equal(o.ranks[1]!.model, join(store, 'blobs', `sha256-${digest}`));
    assert.equal(o.sent.get('relaynode'), 0);
    assert.match(info.join('\n'), /uses the model from its own Ollama store/);
    assert.equal(readFileSync(join(localCache, 'digests', readdirSync(join(localCache, 'digests'))[0]!), 'utf8').split('\n')[0], digest);
  });

  it('resumes an interrupted upload: only the rest is sent', async () => {
    const gguf = await loadGgufModel(modelPath);
    const slice = await localSlice(gguf, { layerStart: 1, layerEnd: 4, head: true }, join(work, 'local-resume'), 'resume.gguf');
    const remote = join(work, 'node-resume', 'resume.gguf');
    const ac = new AbortController();
    // A slow stream, stopped after about a third.
    const slow = (start: number) =>
      Readable.from(
        (async function* () {
          const buf = readFileSync(slice.path).subarray(start);
          for (let i = 0; i < buf.length; i += 64 * 1024) {
            yield buf.subarray(i, i + 64 * 1024);
            await new Promise((r) => setTimeout(r, 20));
          }
        })(),
      );
    const first = await pushSlice(node, slice, remote, {
      signal: ac.signal,
      source: slow,
      onProgress: (n, total) => n > total / 3 && ac.abort(),
    }).then(() => undefined, (e: unknown) => e);
    assert.ok(first instanceof UserError && /upload of .* was stopped/.test(first.message), String(first));
    // The node-side writer (its argv names the file) must be gone before the partial size is final.
    assert.deepEqual(await survivorsAfter(`${remote}.part`, 10_000), []);
    const partial = statSync(`${remote}.part`).size;
    assert.ok(partial > 0 && partial < slice.bytes, `partial ${partial} of ${slice.bytes}`);
    assert.ok(!existsSync(remote));

    const info: string[] = [];
    const second = await pushSlice(node, slice, remote, { onInfo: (m) => info.push(m) });
    assert.equal(second.resumedFrom, partial);
    assert.equal(second.sent, slice.bytes - partial, 'only the rest is sent');
    assert.equal(sha(remote), slice.digest);
    assert.match(info.join('\n'), /resuming the upload/);
  });

  it('refuses a corrupted slice: a bad partial upload and bytes corrupted in flight are sent again', async () => {
    const gguf = await loadGgufModel(modelPath);
    const slice = await localSlice(gguf, { layerStart: 0, layerEnd: 2, head: false }, join(work, 'local-corrupt'), 'corrupt.gguf');
    const remote = join(work, 'node-corrupt', 'corrupt.gguf');
    mkdirSync(join(work, 'node-corrupt'));
    // A partial upload whose bytes differ from ours.
    const bad = Buffer.from(readFileSync(slice.path).subarray(0, 100_000));
    bad[5000] = bad[5000]! ^ 0xff;
    writeFileSync(`${remote}.part`, bad);
    const info: string[] = [];
    const flip = (_start: number, attempt: number) => {
      const s = Readable.from([readFileSync(slice.path)]);
      if (attempt > 0) return s;
      let seen = 0;
      return s.pipe(
        new Transform({
          transform(chunk: Buffer, _e, cb) {
            const c = Buffer.from(chunk);
            if (seen <= 1234 && seen + c.length > 1234) c[1234 - seen] = c[1234 - seen]! ^ 0x01;
            seen += c.length;
            cb(null, c);
          },
        }),
      );
    };
    const r = await pushSlice(node, slice, remote, { source: flip, onInfo: (m) => info.push(m) });
    assert.equal(r.resumedFrom, 0, 'a partial upload that does not match is not resumed');
    assert.equal(r.refused, 1, 'the corrupted upload is refused');
    assert.equal(r.sent, 2 * slice.bytes, 'and sent again');
    assert.equal(sha(remote), slice.digest);
    assert.match(info.join('\n'), /does not match; sending it from the start/);
    assert.match(info.join('\n'), /refused .*sha256/);
  });

  it('a full disk: preflight names the node and the space, and an upload that hits ENOSPC says what to do', async () => {
    const gguf = await loadGgufModel(modelPath);
    const tiny = join(work, 'tiny-disk');
    mkdirSync(tiny);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', tiny]);
    mounts.push(tiny);
    const events: RelayEvent[] = [];
    const err = await provision(baseRequest({ events, model: { path: modelPath, gguf }, nodeCacheDir: tiny, localCacheDir: join(work, 'local-cache') })).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof UserError, String(err));
    assert.match(err.message, /node relaynode: needs [\d.]+ MB in .*tiny-disk but only [\d.]+ (kB|MB) is free there/);
    assert.match(err.next.join('\n'), /node relaynode: free .* in .*tiny-disk/);
    assert.ok(!existsSync(join(tiny, 'slices')), 'nothing uploaded');

    const slice = await localSlice(gguf, { layerStart: 0, layerEnd: 4, head: true }, join(work, 'local-full'), 'full.gguf');
    const up = await pushSlice(node, slice, join(tiny, 'slices', 'full.gguf')).then(() => undefined, (e: unknown) => e);
    assert.ok(up instanceof UserError, String(up));
    assert.match(up.message, /node relaynode: the disk holding .*tiny-disk\/slices is full/);
    assert.match(up.next.join('\n'), /free space on relaynode/);
  });
});
