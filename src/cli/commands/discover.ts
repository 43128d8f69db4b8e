// `llama-relay discover`: list models in the Ollama stores.
import type { CommandModule } from 'yargs';
import { formatBytes } from '../../plan/size.js';
import { discoverModels, type DiscoverResult } from '../../services/discover.js';

interface Args {
  json: boolean;
  root: string[];
}

export function renderDiscover(r: DiscoverResult): string {
  const lines: string[] = [];
  const searched = r.roots.map((x) => `${x.path}${x.exists ? '' : ' (absent)'}`).join(', ');
  const ok = r.models.filter((m) => m.supported);
  const bad = r.models.filter((m) => !m.supported);
  if (r.models.length === 0) return `No models found. Searched: ${searched}\n`;
  const rows = [
    ['NAME', 'SIZE', 'ARCH', 'LAYERS', 'CONTEXT', 'QUANT', 'SPLITTABLE'],
    ...ok.map((m) => [
      m.name,
      formatBytes(m.size),
      m.architecture ?? '?',
      String(m.layers ?? '?'),
      String(m.contextLength ?? '?'),
      m.quantization ?? '?',
      m.splittable ? 'yes' : `no (${m.splitReason})`,
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  if (ok.length) for (const row of rows) lines.push(row.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd());
  if (bad.length) {
    if (lines.length) lines.push('');
    lines.push('Not usable:');
    for (const m of bad) lines.push(`  ${m.name}: ${m.problem}`);
  }
  lines.push('', `Searched: ${searched}`);
  return `${lines.join('\n')}\n`;
}

export const discoverCommand: CommandModule<object, Args> = {
  command: 'discover',
  describe: 'List models in the local Ollama stores',
  builder: (y) =>
    y
      .option('json', { type: 'boolean', default: false, describe: 'print JSON' })
      .option('root', { type: 'string', array: true, default: [] as string[], describe: 'an extra Ollama models directory (repeatable)' }),
  handler: async (a) => {
    const r = await discoverModels(a.root);
    process.stdout.write(a.json ? `${JSON.stringify(r, null, 2)}\n` : renderDiscover(r));
  },
};
