// Provisioning as data: the node probe, platforms, binary and weight steps, preflight problems, resume and progress.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ExternalError, UserError } from '../../src/errors.js';
import { buildProgress } from '../../src/provision/build-progress.js';
import { skipInSourceTar, sliceName } from '../../src/provision/local-files.js';
import { parseProbe, type NodeProbe } from '../../src/provision/node-probe.js';
import { binaryKey, platformMismatch, platformOf, type Platform } from '../../src/provision/platform.js';
import { planNode, type EngineInput, type RankWeights } from '../../src/provision/provision-plan.js';
import { buildArgv, llamaCmakeFlags, parseSliceState } from '../../src/provision/remote-scripts.js';
import { uploadFailure } from '../../src/provision/remote-slice.js';
import { percentStep, resumeStep } from '../../src/provision/resume.js';

const PROBE_OUT = [
  'cache=/home/bob/.cache/llama-relay',
  'os=Linux',
  'arch=x86_64',
  'libc=glibc 2.36',
  'cpu=sse2 avx2 fma avx',
  'tool=cmake',
  'tool=g++',
  'tool=git',
  'tool=tar',
  'tool=sha256sum',
  'writable=1',
  'free_kb=1000000',
  'mem_kb=16000000',
  'cpus=8',
  'cached=abc123',
  `blob=${'a'.repeat(64)} /usr/share/ollama/.ollama/models/blobs/sha256-${'a'.repeat(64)}`,
].join('\n');

const probe = (over: Partial<NodeProbe> = {}): NodeProbe => ({ ...parseProbe(PROBE_OUT), ...over });
const here: Platform = platformOf(probe());

describe('parseProbe', () => {
  it('reads every field', () => {
    const p = parseProbe(PROBE_OUT);
    assert.equal(p.cacheDir, '/home/bob/.cache/llama-relay');
    assert.deepEqual([p.os, p.arch, p.libc, p.cpuFlags], ['Linux', 'x86_64', 'glibc 2.36', 'avx avx2 fma sse2']);
    assert.deepEqual([...p.tools].sort(), ['cmake', 'g++', 'git', 'sha256sum', 'tar']);
    assert.equal(p.writable, true);
    assert.equal(p.freeBytes, 1_024_000_000);
    assert.equal(p.memTotalBytes, 16_384_000_000);
    assert.equal(p.cpus, 8);
    assert.deepEqual([...p.cachedBinaries], ['abc123']);
    assert.equal(p.blobs.get('a'.repeat(64)), `/usr/share/ollama/.ollama/models/blobs/sha256-${'a'.repeat(64)}`);
  });
  it('an unwritable cache and a failed df', () => {
    const p = parseProbe('cache=/x\nos=Linux\ncpus=garbage');
    assert.equal(p.writable, false);
    assert.equal(p.freeBytes, undefined);
    assert.equal(p.cpus, 1);
  });
});

describe('platforms', () => {
  const table: [string, Partial<Platform>, RegExp | undefined][] = [
    ['same', {}, undefined],
    ['arm', { arch: 'aarch64' }, /x86_64 vs Linux aarch64/],
    ['older glibc', { libc: 'glibc 2.31' }, /glibc 2.36 vs glibc 2.31/],
    ['musl', { libc: 'musl libc (x86_64)' }, /musl/],
    ['cuda', { backend: 'cuda' }, /backend cpu vs cuda/],
    ['cpu flags', { cpuFlags: 'sse2' }, /CPU features/],
  ];
  for (const [name, over, want] of table) {
    it(name, () => {
      const other = { ...here, ...over };
      const m = platformMismatch(here, other);
      if (want) assert.match(m ?? '', want);
      else assert.equal(m, undefined);
      assert.equal(binaryKey('k', here) === binaryKey('k', other), want === undefined, 'the cache key follows the platform');
    });
  }
  it('the key follows the source', () => assert.notEqual(binaryKey('pin1', here), binaryKey('pin2', here)));
  it('nvcc means a cuda build', () => assert.equal(platformOf(probe({ tools: new Set(['nvcc']) })).backend, 'cuda'));
});

describe('buildProgress', () => {
  const table: [string, number | undefined][] = [
    ['[1/4] Building C object CMakeFiles/x.dir/a.c.o', 0.25],
    ['[412/412] Linking CXX executable bin/llama-server', 1],
    ['[ 45%] Building CXX object src/CMakeFiles/llama.dir/llama.cpp.o', 0.45],
    ['[100%] Built target llama-server', 1],
    ['-- Configuring done', undefined],
    ['ninja: no work to do.', undefined],
    ['[0/0] nothing', undefined],
  ];
  for (const [line, want] of table) it(line, () => assert.equal(buildProgress(line), want));
});

describe('planNode', () => {
  const engine = (over: Partial<EngineInput> = {}): EngineInput => ({
    sourceKey: 'src1',
    localBinary: { path: '/local/llama-server', bytes: 15e6, platform: here },
    source: { dir: '/local/src', bytes: 170e6, commit: '80fb11a' },
    buildOverheadBytes: 400e6,
    ...over,
  });
  const rank = (r: number, bytes = 100e6, digest?: string): RankWeights => ({ rank: r, slice: { name: `m-L${r}.gguf`, bytes }, ...(digest ? { modelDigest: digest } : {}) });

  it('copies the local build when the platform matches', () => {
    const p = planNode('bob@gpu', probe(), engine(), [rank(1)]);
    assert.deepEqual(p.problems, []);
    assert.equal(p.binary?.kind, 'copy');
    assert.match(p.binary && 'to' in p.binary ? p.binary.to : '', /^\/home\/bob\/\.cache\/llama-relay\/bin\/[0-9a-f]{20}\/llama-server$/);
    assert.deepEqual(p.weights, [{ kind: 'push', rank: 1, name: 'm-L1.gguf', remotePath: '/home/bob/.cache/llama-relay/slices/m-L1.gguf', bytes: 100e6 }]);
    assert.equal(p.diskBytes, 115e6);
  });
  it('reuses a cached build', () => {
    const key = binaryKey('src1', here);
    const p = planNode('n', probe({ cachedBinaries: new Set([key]) }), engine(), []);
    assert.deepEqual(p.binary, { kind: 'reuse', path: `/home/bob/.cache/llama-relay/bin/${key}/llama-server` });
    assert.equal(p.diskBytes, 0);
  });
  it('builds from source on another platform, with the node cpu count', () => {
    const p = planNode('n', probe({ arch: 'aarch64' }), engine(), []);
    assert.equal(p.binary?.kind, 'build');
    if (p.binary?.kind !== 'build') return;
    assert.equal(p.binary.jobs, 8);
    assert.equal(p.binary.commit, '80fb11a', 'the node build is told the pinned commit');
    assert.match(p.binary.why, /x86_64 vs Linux aarch64/);
    assert.equal(p.diskBytes, 570e6);
  });
  it('uses the node Ollama blob when the digests match', () => {
    const d = 'a'.repeat(64);
    const p = planNode('n', probe(), engine(), [rank(1, 100e6, d), rank(2, 100e6, 'b'.repeat(64))]);
    assert.deepEqual(p.weights.map((w) => w.kind), ['ollama', 'push']);
    assert.equal(p.diskBytes, 115e6);
  });

  const problems: [string, NodeProbe, EngineInput | undefined, RankWeights[], { memoryNeeded?: number }, RegExp[]][] = [
    [
      'no build tools',
      probe({ arch: 'aarch64', tools: new Set(['sha256sum']) }),
      engine(),
      [],
      {},
      [/must build llama-server from source .* but cmake, a C\+\+ compiler, git, tar are not installed/],
    ],
    ['only cmake missing', probe({ arch: 'aarch64', tools: new Set(['g++', 'git', 'tar']) }), engine(), [], {}, [/but cmake is not installed/]],
    ['no source to ship', probe({ arch: 'aarch64' }), engine({ source: undefined }), [], {}, [/no llama-server for Linux aarch64 .* no patched source tree/]],
    ['full disk', probe({ freeBytes: 50e6 }), engine(), [rank(1)], {}, [/needs 115.0 MB in \/home\/bob\/.cache\/llama-relay but only 50.0 MB is free there/]],
    ['unwritable cache', probe({ writable: false }), engine(), [], {}, [/cannot create or write the cache directory/]],
    ['no sha256sum', probe({ tools: new Set(['cmake']) }), undefined, [rank(1)], {}, [/sha256sum is not installed/]],
    ['too little memory', probe(), undefined, [], { memoryNeeded: 40e9 }, [/need about 40.0 GB of memory but it has 16.4 GB/]],
    [
      'everything at once',
      probe({ arch: 'aarch64', tools: new Set(), freeBytes: 1e6 }),
      engine(),
      [rank(1)],
      { memoryNeeded: 40e9 },
      [/cmake, a C\+\+ compiler, git, tar/, /sha256sum/, /needs .* free/, /memory/],
    ],
  ];
  for (const [name, p, e, w, o, want] of problems) {
    it(`problem: ${name}`, () => {
      const plan = planNode('alice@10.0.0.5', p, e, w, o);
      assert.equal(plan.problems.length, want.length, plan.problems.join('\n'));
      want.forEach((re, i) => assert.match(plan.problems[i]!, re));
      assert.ok(plan.next.length >= want.length);
      for (const n of plan.next.filter((x) => !x.startsWith('run scripts'))) assert.match(n, /^node alice@10\.0\.0\.5: /);
    });
  }
});

describe('resume', () => {
  const table: [{ final?: number; part?: number }, ReturnType<typeof resumeStep>][] = [
    [{}, { kind: 'fresh' }],
    [{ final: 100 }, { kind: 'verify-final' }],
    [{ final: 99 }, { kind: 'fresh' }],
    [{ part: 40 }, { kind: 'check-prefix', bytes: 40 }],
    [{ part: 0 }, { kind: 'fresh' }],
    [{ part: 101 }, { kind: 'fresh' }],
    [{ final: 100, part: 40 }, { kind: 'verify-final' }],
  ];
  for (const [state, want] of table) it(JSON.stringify(state), () => assert.deepEqual(resumeStep(state, 100), want));
  it('parseSliceState', () => {
    assert.deepEqual(parseSliceState('final=100\npart=   40'), { final: 100, part: 40 });
    assert.deepEqual(parseSliceState(''), {});
  });
  it('percentStep', () => {
    assert.equal(percentStep(-1, 0, 100), 0);
    assert.equal(percentStep(0, 0, 100), undefined);
    assert.equal(percentStep(0, 50, 100), 50);
    assert.equal(percentStep(99, 100, 100), 100);
    assert.equal(percentStep(-1, 0, 0), 100);
  });
});

describe('remote scripts and failures', () => {
  it('buildArgv passes paths as arguments, not inside the script', () => {
    const a = buildArgv({ sourceDir: "/c/it's", buildDir: '/c/b', out: '/c/bin/k/llama-server', jobs: 4, cmakeFlags: ['-DX=1'] });
    assert.deepEqual(a.slice(3), ['build', "/c/it's", '/c/b', '/c/bin/k/llama-server', '4', '-DX=1']);
    assert.ok(!a[2]!.includes("it's"));
  });
  it('cmake flags per backend', () => {
    assert.ok(llamaCmakeFlags('cpu', 'x86_64').includes('-DGGML_NATIVE=ON'));
    assert.ok(llamaCmakeFlags('cpu', 'x86_64').some((f) => f.includes('-mno-amx-tile')));
    assert.ok(!llamaCmakeFlags('cpu', 'aarch64').some((f) => f.includes('amx')));
    assert.ok(llamaCmakeFlags('cuda', 'x86_64').includes('-DGGML_CUDA=ON'));
    assert.ok(llamaCmakeFlags('metal', 'arm64').includes('-DGGML_METAL=ON'));
  });
  it('a full disk is the user’s to fix, other failures are external', () => {
    const full = uploadFailure('bob@gpu', '/c/slices/m.gguf.part', ['cat: write error: No space left on device'], 'exit code 1');
    assert.ok(full instanceof UserError);
    assert.match(full.message, /^node bob@gpu: the disk holding \/c\/slices is full/);
    assert.ok(uploadFailure('n', '/p', ['boom'], 'exit code 1') instanceof ExternalError);
    assert.match(uploadFailure('n', '/p', [], '', true).message, /was stopped/);
  });
  it('the source tar skips .git and build trees', () => {
    const table: [string, boolean][] = [['./.git', true], ['./.git/HEAD', true], ['./build-x/a.o', true], ['./build', true], ['./src/build.cpp', false], ['./CMakeLists.txt', false], ['./.github/x', false]];
    for (const [p, want] of table) assert.equal(skipInSourceTar(p), want, p);
  });
  it('slice names', () => {
    assert.equal(sliceName('0123456789abcdef0123', { layerStart: 0, layerEnd: 8, head: true }), '0123456789abcdef-L0-8-head.gguf');
    assert.equal(sliceName('0123456789abcdef0123', { layerStart: 8, layerEnd: 16, head: false }), '0123456789abcdef-L8-16.gguf');
  });
});
