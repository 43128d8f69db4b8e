// A crashed rank: node, exit code or signal with its meaning, and the last lines of its log.
import { Box, Text } from 'ink';
import type { Failure } from './cluster-state.js';

export function FailureRows({ failures }: { failures: readonly Failure[] }) {
  if (failures.length === 0) return null;
  return (
    <Box flexDirection="column" marginTop={1}>
      {failures.map((f) => (
        <Box key={f.rank} flexDirection="column">
          <Text color="red">
            {`✖ rank ${f.rank} on ${f.node}: ${f.meaning}${f.restarting ? ' — restarting' : ''}`}
          </Text>
          {f.lastLines.map((l, i) => (
            <Text key={i} dimColor wrap="truncate-end">{`  │ ${l}`}</Text>
          ))}
        </Box>
      ))}
    </Box>
  );
}
