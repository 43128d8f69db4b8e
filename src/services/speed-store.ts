// The speed cache file (plan/speed-cache.ts records) in the local cache: speeds.json. A missing or unreadable file is
// an empty cache (the plan falls back to memory and says so); writes go to a temp name and are renamed into place.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { localCacheRoot } from '../provision/local-engine.js';
import { mergeRecords, type SpeedRecord } from '../plan/speed-cache.js';

/** LLAMA_RELAY_SPEED_CACHE names another file (tests keep theirs apart from the user's). */
export const speedFile = (): string => process.env.LLAMA_RELAY_SPEED_CACHE ?? join(localCacheRoot(), 'speeds.json');

export async function readSpeeds(file = speedFile()): Promise<SpeedRecord[]> {
  try {
    const v = JSON.parse(await readFile(file, 'utf8')) as { records?: SpeedRecord[] };
    return Array.isArray(v.records) ? v.records.filter((r) => typeof r.node === 'string' && r.secondsPerByte > 0) : [];
  } catch {
    return [];
  }
}

export async function saveSpeeds(fresh: readonly SpeedRecord[], file = speedFile()): Promise<void> {
  if (!fresh.length) return;
  const records = mergeRecords(await readSpeeds(file), fresh);
  await mkdir(join(file, '..'), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify({ version: 1, records }, null, 2)}\n`);
  await rename(tmp, file);
}
