// The plan's predicted decode against the chain's measured decode, as the run goes.
import { Text } from 'ink';
import type { ClusterState } from './cluster-state.js';

export function SpeedLine({ speed }: Pick<ClusterState, 'speed'>) {
  if (!speed) return null;
  const prefill = speed.predictedPrefillTps !== undefined ? `, prefill ${speed.predictedPrefillTps.toFixed(1)}` : '';
  const measured = speed.measuredDecodeTps !== undefined ? `measured ${speed.measuredDecodeTps.toFixed(1)} tok/s (${speed.tokens ?? 0} tokens)` : 'measured: no tokens yet';
  return (
    <Text>
      <Text color="cyan">decode </Text>
      <Text>{`${measured}; predicted ${speed.predictedDecodeTps.toFixed(1)} tok/s${prefill}`}</Text>
    </Text>
  );
}
