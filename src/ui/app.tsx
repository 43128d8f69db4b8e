// The TUI: reads one store snapshot; finished lines go to <Static>, only live rows re-render. It never starts anything.
import { Box, Static, Text } from 'ink';
import { useSyncExternalStore } from 'react';
import { ApiLine } from './api-line.js';
import { ChatPrompt, type ChatInputCallbacks } from './chat-prompt.js';
import { ChatTranscript } from './chat-transcript.js';
import type { ClusterStore } from './cluster-store.js';
import { FailureRows } from './failure-rows.js';
import { NodeTable } from './node-table.js';
import { ResumingLine } from './resuming-line.js';
import { SpeedLine } from './speed-line.js';
import { TokenStream } from './token-stream.js';

/** `chat`: the callbacks the prompt line calls (--interactive on a terminal); without them no prompt is shown. */
export function App({ store, chat }: { store: ClusterStore; chat?: ChatInputCallbacks }) {
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
        {s.engineBuild && s.engineBuild.progress < 1 ? (
          <Text color="cyan">{`building the ${s.engineBuild.variant} llama-server here: ${Math.round(s.engineBuild.progress * 100)}%${s.engineBuild.detail ? ` (${s.engineBuild.detail})` : ''}`}</Text>
        ) : null}
        <NodeTable rows={s.rows} tokensPerSecond={s.tokensPerSecond} />
        <SpeedLine speed={s.speed} />
        <ResumingLine resuming={s.resuming} />
        <FailureRows failures={s.failures} />
        {s.chat ? <ChatTranscript turns={s.chat.turns} busy={s.chat.busy} /> : <TokenStream text={s.tokens} />}
        {s.chat?.open && chat ? <ChatPrompt busy={s.chat.busy} onSubmit={chat.onSubmit} onInterrupt={chat.onInterrupt} /> : null}
        <ApiLine api={s.api} requests={s.requests} />
      </Box>
    </>
  );
}
