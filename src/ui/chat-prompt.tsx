// --interactive: the prompt line under the token stream. It only edits its own line and calls the callbacks it is
// handed; sending the message is the service's job (lines sent while an answer streams wait their turn there).
import { Box, Text, useInput } from 'ink';
import { useRef, useState } from 'react';

export interface ChatInputCallbacks {
  /** Enter: the line as typed (the session decides what /exit and blank lines mean). */
  onSubmit: (line: string) => void;
  /** Ctrl-C (raw mode swallows the terminal's SIGINT while the prompt reads keys). */
  onInterrupt: () => void;
}

export function ChatPrompt({ busy, onSubmit, onInterrupt }: { busy: boolean } & ChatInputCallbacks) {
  // The ref sees keys that arrive before React re-renders with the new text.
  const line = useRef('');
  const [text, setText] = useState('');
  const set = (t: string) => {
    line.current = t;
    setText(t);
  };
  useInput((input, key) => {
    if (key.ctrl && input === 'c') return onInterrupt();
    if (key.return) {
      const sent = line.current;
      set('');
      return onSubmit(sent);
    }
    if (key.backspace || key.delete) return set(line.current.slice(0, -1));
    if (key.ctrl || key.meta || key.tab || key.upArrow || key.downArrow || key.leftArrow || key.rightArrow) return;
    // Pasted text arrives as one chunk: every line break in it sends the line before it.
    const parts = input.split(/\r\n|\r|\n/);
    for (const part of parts.slice(0, -1)) {
      const sent = line.current + part;
      line.current = '';
      onSubmit(sent);
    }
    set(line.current + parts.at(-1)!);
  });
  return (
    <Box>
      <Text color="cyan">{'› '}</Text>
      <Text>{text}</Text>
      {busy ? <Text dimColor>{text ? '' : ' answering… (Ctrl-C stops everything)'}</Text> : <Text inverse> </Text>}
      {!busy && !text ? <Text dimColor>{'  type a message, Enter sends; /exit ends'}</Text> : null}
    </Box>
  );
}
