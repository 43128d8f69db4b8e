// The TUI: reads one store snapshot; finished lines go to <Static>, only live rows re-render. It never starts anything.
import { Box, Static, Text } from 'ink';
import { useSyncExternalStore } from 'react';
import { ApiLine } from './api-line.js';
import type { ClusterStore } from './cluster-store.js';
import { FailureRows } from './failure-rows.js';
import { NodeTable } from './node-table.js';
import { TokenStream } from './token-stream.js';

export function App({ store }: { store: ClusterStore }) {
  const s = useSyncExternalStore(store.subscribe, store.getSnapshot);
  return (
    <>
      <Static items={[...s.finished]}>
        {(line) => (
          <Text key={line.id} color={line.tone === 'error' ? 'red' : undefined}>
            {line.tone === 'error' ? `error: ${line.text}` : line.text}
          </Text>
        )}
      </Static>
      <Box flexDirection="column">
        <NodeTable rows={s.rows} tokensPerSecond={s.tokensPerSecond} />
        <FailureRows failures={s.failures} />
        <TokenStream text={s.tokens} />
        <ApiLine api={s.api} requests={s.requests} />
      </Box>
    </>
  );
}
