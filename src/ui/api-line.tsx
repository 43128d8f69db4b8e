// Where the head's API answers, and how many requests it has served.
import { Box, Text } from 'ink';
import type { ClusterState } from './cluster-state.js';

export function ApiLine({ api, requests }: Pick<ClusterState, 'api' | 'requests'>) {
  if (!api) return null;
  return (
    <Box marginTop={1}>
      <Text>
        <Text color="green">API </Text>
        <Text bold>{api.url}</Text>
        {api.model ? <Text dimColor>{` (${api.model})`}</Text> : null}
        <Text>{`  requests: ${requests.total} total, ${requests.active} active, ${requests.failed} failed`}</Text>
      </Text>
    </Box>
  );
}
