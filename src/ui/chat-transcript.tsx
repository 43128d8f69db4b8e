// --interactive: the conversation in the token stream's place; the answer being streamed grows at the bottom.
import { Box, Text } from 'ink';
import type { ChatTurn } from './cluster-state.js';

/** Keeps the last turns that fit in about `maxChars`, cutting the oldest one shown at its start. */
export function visibleTurns(turns: readonly ChatTurn[], maxChars: number): ChatTurn[] {
  const out: ChatTurn[] = [];
  let left = maxChars;
  for (let i = turns.length - 1; i >= 0 && left > 0; i--) {
    const t = turns[i]!;
    out.unshift(t.text.length > left ? { ...t, text: `…${t.text.slice(-left)}` } : t);
    left -= t.text.length;
  }
  return out;
}

export function ChatTranscript({ turns, busy, maxChars = 1200 }: { turns: readonly ChatTurn[]; busy: boolean; maxChars?: number }) {
  if (turns.length === 0) return null;
  const shown = visibleTurns(turns, maxChars);
  return (
    <Box marginTop={1} borderStyle="round" borderColor="gray" paddingX={1} flexDirection="column">
      {shown.map((t, i) =>
        t.role === 'user' ? (
          <Text key={i} color="cyan" wrap="wrap">{`you: ${t.text}`}</Text>
        ) : (
          <Text key={i} wrap="wrap" {...(t.failed ? { color: 'red' } : {})}>
            {t.text || (busy && i === shown.length - 1 ? '…' : '')}
            {t.failed ? ' [broke off]' : ''}
          </Text>
        ),
      )}
    </Box>
  );
}
