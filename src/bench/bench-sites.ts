// What a configuration's ranks find on their nodes: this machine's files, or on a remote node the patched
// llama-server and the rank's slice (provisioned like `up`), the stock llama-server / ggml-rpc-server (this machine's
// build, copied when the platform matches) and the whole model for a stock or RPC head (pushed resumably, verified).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { UserError } from '../errors.js';
import type { RelayEvent } from '../events/events.js';
import type { GgufModel } from '../gguf/model.js';
import { localCacheRoot, localEngine, modelDigest } from '../provision/local-engine.js';
import { parseProbe, probeArgv, type NodeProbe } from '../provision/node-probe.js';
import { platformOf, type Platform } from '../provision/platform.js';
import type { EngineInput } from '../provision/provision-plan.js';
import { ensureBinary } from '../provision/remote-binary.js';
import { pushSlice } from '../provision/remote-slice.js';
import { provision, type ProvisionReport } from '../provision/provision-nodes.js';
import { LocalTransport } from '../ssh/local-transport.js';
import type { Transport } from '../ssh/transport.js';
import type { BenchConfig } from './bench-config.js';
import type { NodeHosts } from '../runtime/node-hosts.js';
import type { Binaries } from '../provision/llama-builds.js';
import type { RankSite } from './config-launch.js';
import { stockCopyRefusal, wholeModelRefusal } from './remote-prereqs.js';
import { stockFitRefusal } from './stock-fit.js';

export interface SitesOptions {
  hosts: NodeHosts;
  model: string;
  gguf: GgufModel;
  /** This machine's builds. */
  bins: Binaries;
  nodeCacheDir?: string;
  info: (message: string) => void;
  signal?: AbortSignal;
}

const once = <T>(cache: Map<string, Promise<T>>, key: string, make: () => Promise<T>): Promise<T> => {
  let p = cache.get(key);
  if (!p) {
    p = make();
    cache.set(key, p);
  }
  return p;
};

export class BenchSites {
  private readonly stock = new Map<string, Promise<{ stockServer: string; rpcServer: string }>>();
  private readonly whole = new Map<string, Promise<string>>();
  private readonly probes = new Map<string, Promise<NodeProbe>>();
  /** Per chain configuration: its ranks provisioned once, for every round of the run. */
  private readonly chains = new Map<string, Promise<ProvisionReport>>();
  private engine?: Promise<EngineInput>;
  private digest?: Promise<string | undefined>;
  private localPlatform?: Promise<Platform>;

  constructor(private readonly o: SitesOptions) {}

  private get sig() {
    return this.o.signal ? { signal: this.o.signal } : {};
  }

  private emit = (e: RelayEvent) => {
    if (e.kind === 'info') this.o.info(e.message);
  };

  /** Per rank of `c`, its node's address and the paths there; a local rank's secret comes from `secretFile`. */
  async forConfig(c: BenchConfig, secretFile: string): Promise<RankSite[]> {
    const { hosts, bins, model } = this.o;
    const local = (i: number): RankSite => ({ host: hosts.address(c.ranks[i]!.node), model, bins, secretFile });
    if (c.kind === 'chain') {
      if (c.ranks.every((r) => hosts.isLocal(r.node))) return c.ranks.map((_, i) => local(i));
      const r = await once(this.chains, c.id, async () =>
        provision({
          ranks: c.ranks.map((r, i) => ({ rank: i, node: hosts.transport(r.node).name, layerStart: r.layers[0], layerEnd: r.layers[1] })),
          transports: new Map(c.ranks.map((r) => [hosts.transport(r.node).name, hosts.transport(r.node)] as const)),
          binary: { engine: await (this.engine ??= localEngine(bins.patchedServer)), local: bins.patchedServer },
          model: { path: model, gguf: this.o.gguf, ...(await this.modelDigest()) },
          nodeCacheDir: this.o.nodeCacheDir,
          emit: this.emit,
          ...this.sig,
        }),
      );
      return c.ranks.map((rank, i) =>
        hosts.isLocal(rank.node)
          ? local(i)
          : { host: hosts.address(rank.node), model: r.ranks[i]!.model, bins: { ...bins, patchedServer: r.ranks[i]!.binary } },
      );
    }
    // Stock holds the whole model on node 0 (remote here: an all-local configuration does not come through this).
    if (c.kind === 'stock' && !hosts.isLocal(c.ranks[0]!.node)) {
      const t = hosts.transport(c.ranks[0]!.node);
      const refusal = stockFitRefusal(t.name, this.o.gguf.fileBytes, (await this.probe(t)).memTotalBytes);
      if (refusal) throw refusal;
    }
    // stock and rpc: the head (node 0) holds the whole model and runs stock llama-server; rpc servers need only their binary.
    return Promise.all(
      c.ranks.map(async (rank, i): Promise<RankSite> => {
        if (hosts.isLocal(rank.node)) return local(i);
        const t = hosts.transport(rank.node);
        const stock = await this.stockBinaries(t);
        return { host: hosts.address(rank.node), model: i === 0 ? await this.wholeModel(t) : model, bins: { ...bins, ...stock } };
      }),
    );
  }

  private async modelDigest(): Promise<{ digest?: string }> {
    this.digest ??= modelDigest(this.o.model, this.o.gguf, localCacheRoot(), this.emit);
    const d = await this.digest;
    return d ? { digest: d } : {};
  }

  private probe(t: Transport, digests: readonly string[] = []): Promise<NodeProbe> {
    const make = async () => parseProbe((await t.exec(probeArgv(this.o.nodeCacheDir, digests), this.sig)).stdout);
    return digests.length ? make() : once(this.probes, t.name, make);
  }

  /** This machine's stock llama-server and ggml-rpc-server on the node, copied once per build (same platform only). */
  private stockBinaries(t: Transport): Promise<{ stockServer: string; rpcServer: string }> {
    return once(this.stock, t.name, async () => {
      const probe = await this.probe(t);
      const theirs = platformOf(probe);
      this.localPlatform ??= new LocalTransport().exec(probeArgv('/tmp', [])).then((r) => platformOf(parseProbe(r.stdout)));
      const refusal = stockCopyRefusal(t.name, await this.localPlatform, probe, theirs);
      if (refusal) throw refusal;
      const copy = async (from: string) => {
        const key = await fileKey(from);
        const to = `${probe.cacheDir}/stock/${key}/${basename(from)}`;
        const there = (await t.exec(['sh', '-c', 'test -x "$1" && echo yes; exit 0', 'check', to], this.sig)).stdout.trim() === 'yes';
        if (!there) {
          this.o.info(`node ${t.name}: copying this machine's stock ${basename(from)} (same platform)`);
          await ensureBinary(t, { kind: 'copy', from, to, bytes: (await stat(from)).size }, { cmakeFlags: [], ...this.sig });
        }
        return to;
      };
      return { stockServer: await copy(this.o.bins.stockServer), rpcServer: await copy(this.o.bins.rpcServer) };
    });
  }

  /** The whole model on the node, for a stock or RPC head: its own Ollama blob, or pushed (resumable, sha256-verified). */
  private wholeModel(t: Transport): Promise<string> {
    return once(this.whole, t.name, async () => {
      const { digest } = await this.modelDigest();
      if (!digest || this.o.gguf.parts.length > 1) {
        throw new UserError(`node ${t.name}: a stock or RPC head there needs the whole model, and a split GGUF cannot be sent as one file`, [
          'put a local node first in --nodes, so the stock and RPC heads run on this machine',
        ]);
      }
      const probe = await this.probe(t, [digest]);
      const blob = probe.blobs.get(digest);
      if (blob) return blob;
      const bytes = this.o.gguf.fileBytes;
      const refusal = wholeModelRefusal(t.name, probe, bytes);
      if (refusal) throw refusal;
      const remotePath = `${probe.cacheDir}/models/${digest.slice(0, 16)}-${basename(this.o.model)}`;
      this.o.info(`node ${t.name}: the stock/RPC head needs the whole model; sending it to ${remotePath} (resumable, verified)`);
      await pushSlice(t, { path: this.o.model, bytes, digest }, remotePath, { ...this.sig, onInfo: this.o.info });
      return remotePath;
    });
  }
}

/** A build's cache key on the nodes: the first 16 hex digits of its sha256. */
async function fileKey(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex').slice(0, 16);
}
