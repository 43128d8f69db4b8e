// How a prompt is sent: through the chat template where the model has one (unless raw), with the Ollama model's own
// sampling params where present, else greedy, and a line that says which.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { promptMode } from '../../src/serve/generate.js';
import { chatTemplateOf, generationSettings } from '../../src/serve/generation-settings.js';

test('no params: greedy, and the note says so', () => {
  const g = generationSettings({ chatTemplate: 'present' });
  assert.deepEqual(g.sampling, { temperature: 0 });
  assert.match(g.samplingNote, /greedy/);
});

test("an Ollama model's params are used (sampling keys only; num_ctx and the like are not request fields)", () => {
  const g = generationSettings({ chatTemplate: 'present', ollamaParams: { temperature: 0.6, top_p: 0.95, stop: ['<|im_end|>'], num_ctx: 8192 }, system: 'Be brief.' });
  assert.deepEqual(g.sampling, { temperature: 0.6, top_p: 0.95, stop: ['<|im_end|>'] });
  assert.match(g.samplingNote, /the model's own params \(temperature 0\.6, top_p 0\.95, stop \["<\|im_end\|>"\]\)/);
  assert.equal(g.system, 'Be brief.');
});

test('chat where the model has a template; plain completion without one, when unknown, or raw', () => {
  const with_ = generationSettings({ chatTemplate: chatTemplateOf('{% for m in messages %}…{% endfor %}') });
  assert.equal(promptMode(with_).chat, true);
  assert.match(promptMode(with_).note, /as a chat message/);
  assert.equal(promptMode(with_, true).chat, false);
  assert.match(promptMode(with_, true).note, /plain completion \(raw\)/);
  const without = generationSettings({ chatTemplate: chatTemplateOf(undefined) });
  assert.equal(without.chatTemplate, 'absent');
  assert.match(promptMode(without).note, /no chat template/);
  assert.equal(promptMode(generationSettings({ chatTemplate: 'unknown' })).chat, false);
});
