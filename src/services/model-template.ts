// Whether a model file has a chat template (GGUF `tokenizer.chat_template`); 'unknown' when the header cannot be read
// (with --layers the file is not parsed for planning, and may not be a GGUF at all).
import { chatTemplateOf, type ChatTemplate } from '../serve/generation-settings.js';
import { readGgufHeader } from '../gguf/model.js';

export async function modelChatTemplate(path: string): Promise<ChatTemplate> {
  try {
    const h = await readGgufHeader(path);
    const v = h.kvs.find((kv) => kv.key === 'tokenizer.chat_template')?.value;
    return chatTemplateOf(typeof v === 'string' ? v : undefined);
  } catch {
    return 'unknown';
  }
}
