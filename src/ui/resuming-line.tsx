// Requests in flight waiting for a lost rank: shown while they wait, gone once they resume or fail.
import { Text } from 'ink';
import type { ClusterState } from './cluster-state.js';

export function ResumingLine({ resuming }: Pick<ClusterState, 'resuming'>) {
  if (!resuming) return null;
  return <Text color="yellow">{resuming.detail}</Text>;
}
