// bench on remote nodes: when the stock build cannot be copied, or the whole model cannot go to a stock/RPC head.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stockCopyRefusal, wholeModelRefusal } from '../../src/bench/remote-prereqs.js';
import { stockFitRefusal } from '../../src/bench/stock-fit.js';
import { UserError } from '../../src/errors.js';
import { parseProbe, type NodeProbe } from '../../src/provision/node-probe.js';
import { platformOf } from '../../src/provision/platform.js';

const probe = (over: Partial<NodeProbe> = {}): NodeProbe => ({
  ...parseProbe(['cache=/home/a/.cache/llama-relay', 'os=Linux', 'arch=x86_64', 'libc=glibc 2.36', 'cpu=avx2 fma', 'tool=sha256sum', 'writable=1', 'free_kb=1000', 'cpus=4'].join('\n')),
  ...over,
});
const here = platformOf(probe());

describe('stockCopyRefusal', () => {
  it('copies to a node of the same platform with a writable cache', () => assert.equal(stockCopyRefusal('gpu1', here, probe(), here), undefined));
  it('refuses another platform, naming the node, the platform and how to go on without stock and RPC', () => {
    const e = stockCopyRefusal('gpu1', here, probe(), { ...here, arch: 'aarch64' });
    assert.ok(e instanceof UserError);
    assert.match(e.message, /^node gpu1: no stock llama-server \/ ggml-rpc-server for Linux aarch64 glibc 2\.36 cpu; .*x86_64 vs Linux aarch64/);
    assert.ok(e.next.some((n) => n.includes('--no-stock --no-rpc')));
  });
  it('refuses an unwritable cache, pointing at --node-cache', () => {
    const e = stockCopyRefusal('gpu1', here, probe({ writable: false }), here);
    assert.ok(e instanceof UserError && /cannot write/.test(e.message) && /--node-cache/.test(e.next.join()));
  });
});

describe('wholeModelRefusal', () => {
  it('takes a model that fits', () => assert.equal(wholeModelRefusal('gpu1', probe(), 500_000), undefined));
  it('names every problem at once: disk too small, no sha256sum', () => {
    const e = wholeModelRefusal('gpu1', probe({ tools: new Set() }), 5_000_000);
    assert.ok(e instanceof UserError);
    assert.match(e.message, /^node gpu1: cannot take the whole model .*sha256sum is not installed.*needs 5\.\d+ MB .* but only 1\.\d+ MB is free/);
    assert.ok(e.next.some((n) => /local node first/.test(n)));
  });
});

describe('stockFitRefusal', () => {
  it('runs stock when the weights fit in node 0, or when its memory is unknown', () => {
    assert.equal(stockFitRefusal('gpu1', 4e9, 16e9), undefined);
    assert.equal(stockFitRefusal('gpu1', 4e9, undefined), undefined);
  });
  it('skips stock on a node too small for the whole model, saying the split configurations still run', () => {
    const e = stockFitRefusal('gpu1', 40e9, 16e9);
    assert.ok(e instanceof UserError);
    assert.match(e.message, /whole model \(40\.\d+ GB\) on one node, but gpu1 has 16\.\d+ GB/);
    assert.ok(e.next.some((n) => /--no-stock/.test(n)));
  });
});
