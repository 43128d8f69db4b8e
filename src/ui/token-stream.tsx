// The live tail of generated text; only the last few hundred characters re-render.
import { Box, Text } from 'ink';

export function TokenStream({ text, maxChars = 600 }: { text: string; maxChars?: number }) {
  if (!text) return null;
  const tail = text.length > maxChars ? `…${text.slice(-maxChars)}` : text;
  return (
    <Box marginTop={1} borderStyle="round" borderColor="gray" paddingX={1}>
      <Text wrap="wrap">{tail}</Text>
    </Box>
  );
}
