// One row per rank: host, rank, layers, phase (with progress), memory, tok/s and hop time.
import { Box, Text } from 'ink';
import type { ClusterState, RankRow } from './cluster-state.js';

const cols = { rank: 6, node: 22, layers: 9, phase: 22, mem: 10, tps: 9, hop: 9 };

const phaseColor: Record<RankRow['phase'], string> = {
  connect: 'gray',
  provision: 'cyan',
  upload: 'cyan',
  build: 'cyan',
  load: 'yellow',
  ready: 'green',
  failed: 'red',
  stopped: 'gray',
};

function bar(p: number, width = 8): string {
  const n = Math.round(Math.max(0, Math.min(1, p)) * width);
  return `${'█'.repeat(n)}${'░'.repeat(width - n)}`;
}

export function phaseText(r: RankRow): string {
  return r.progress === undefined ? r.phase : `${r.phase} ${bar(r.progress)} ${Math.round(r.progress * 100)}%`;
}

const mib = (b?: number) => (b === undefined ? '-' : `${Math.round(b / 1024 / 1024)} MiB`);

export function NodeTable({ rows, tokensPerSecond }: { rows: ClusterState['rows']; tokensPerSecond?: number | undefined }) {
  return (
    <Box flexDirection="column">
      <Box>
        <Box width={cols.rank}><Text bold>RANK</Text></Box>
        <Box width={cols.node}><Text bold>NODE</Text></Box>
        <Box width={cols.layers}><Text bold>LAYERS</Text></Box>
        <Box width={cols.phase}><Text bold>PHASE</Text></Box>
        <Box width={cols.mem}><Text bold>MEMORY</Text></Box>
        <Box width={cols.tps}><Text bold>TOK/S</Text></Box>
        <Box width={cols.hop}><Text bold>HOP</Text></Box>
      </Box>
      {rows.map((r) => (
        <Box key={r.rank}>
          <Box width={cols.rank}><Text>{r.rank}{r.role === 'head' ? '*' : ''}</Text></Box>
          <Box width={cols.node}><Text wrap="truncate-end">{r.node}</Text></Box>
          <Box width={cols.layers}><Text>{`${r.layers[0]}:${r.layers[1]}`}</Text></Box>
          <Box width={cols.phase}><Text color={phaseColor[r.phase]} wrap="truncate-end">{phaseText(r)}</Text></Box>
          <Box width={cols.mem}><Text>{mib(r.rssBytes)}</Text></Box>
          <Box width={cols.tps}><Text>{r.role === 'head' && tokensPerSecond !== undefined ? tokensPerSecond.toFixed(1) : '-'}</Text></Box>
          <Box width={cols.hop}><Text>{r.hopMs === undefined ? '-' : `${r.hopMs.toFixed(1)} ms`}</Text></Box>
        </Box>
      ))}
    </Box>
  );
}
