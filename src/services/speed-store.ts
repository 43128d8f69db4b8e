// The measurement cache in the local cache dir, speeds.json: speed records (plan/speed-cache.ts) and the devices and
// memory each node reported at its last probe. A missing or unreadable file is an empty cache (the plan falls back to
// memory and says so); writes go to a temp name and are renamed into place.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { localCacheRoot } from '../provision/local-engine.js';
import type { NodeDevices } from '../provision/node-devices.js';
import { mergeLinks, mergeRecords, type LinkRecord, type SpeedRecord } from '../plan/speed-cache.js';

/** LLAMA_RELAY_SPEED_CACHE names another file (tests keep theirs apart from the user's). */
export const speedFile = (): string => process.env.LLAMA_RELAY_SPEED_CACHE ?? join(localCacheRoot(), 'speeds.json');

interface CacheFile {
  records: SpeedRecord[];
  /** By node name: what it reported at its last probe. */
  devices: Record<string, NodeDevices & { probedAt: string }>;
  /** Each link's one-way latency, measured between two nodes. */
  links: LinkRecord[];
}

async function readCache(file: string): Promise<CacheFile> {
  try {
    const v = JSON.parse(await readFile(file, 'utf8')) as Partial<CacheFile>;
    return {
      records: Array.isArray(v.records) ? v.records.filter((r) => typeof r.node === 'string' && r.secondsPerByte > 0) : [],
      devices: v.devices && typeof v.devices === 'object' ? v.devices : {},
      links: Array.isArray(v.links) ? v.links.filter((l) => typeof l.from === 'string' && typeof l.to === 'string' && l.oneWaySeconds >= 0) : [],
    };
  } catch {
    return { records: [], devices: {}, links: [] };
  }
}

async function writeCache(file: string, c: CacheFile): Promise<void> {
  await mkdir(join(file, '..'), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify({ version: 1, ...c }, null, 2)}\n`);
  await rename(tmp, file);
}

export async function readSpeeds(file = speedFile()): Promise<SpeedRecord[]> {
  return (await readCache(file)).records;
}

/** Each node's devices and memory from its last probe, by node name. */
export async function readDevices(file = speedFile()): Promise<Record<string, NodeDevices & { probedAt: string }>> {
  return (await readCache(file)).devices;
}

export async function readLinks(file = speedFile()): Promise<LinkRecord[]> {
  return (await readCache(file)).links;
}

export async function saveSpeeds(fresh: readonly SpeedRecord[], links: readonly LinkRecord[] = [], file = speedFile()): Promise<void> {
  if (!fresh.length && !links.length) return;
  const c = await readCache(file);
  await writeCache(file, { ...c, records: mergeRecords(c.records, fresh), links: mergeLinks(c.links, links) });
}

export async function saveDevices(byNode: Readonly<Record<string, NodeDevices>>, file = speedFile()): Promise<void> {
  if (!Object.keys(byNode).length) return;
  const c = await readCache(file);
  const at = new Date().toISOString();
  const fresh = Object.fromEntries(Object.entries(byNode).map(([n, d]) => [n, { ...d, probedAt: at }]));
  await writeCache(file, { ...c, devices: { ...c.devices, ...fresh } });
}
