import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OllamaApiError } from '../../src/ollama-api/api-error.js';
import { ChatStream, chatToLlama } from '../../src/ollama-api/chat.js';
import { generateInput, generateToLlama, GenerateStream } from '../../src/ollama-api/generate.js';
import { renderPrompt } from '../../src/ollama-api/go-template.js';
import { managementRefusal, parametersText, psResponse, showResponse, tagsResponse } from '../../src/ollama-api/info.js';
import { formatFields, samplingFields } from '../../src/ollama-api/options.js';
import { parseBody, requireModel } from '../../src/ollama-api/request-body.js';
import { namesModel, servedModelName, type ServedModel } from '../../src/ollama-api/served-model.js';

const model: ServedModel = {
  name: 'llama3:8b',
  size: 123,
  digest: 'ab'.repeat(32),
  modifiedAt: '2026-01-01T00:00:00.000Z',
  details: { parent_model: '', format: 'gguf', family: 'llama', families: ['llama'], parameter_size: '8.0B', quantization_level: 'Q4_0' },
  modelInfo: { 'general.architecture': 'llama' },
  params: { stop: ['<|eot_id|>'], temperature: 0.6 },
  template: '{{ if .System }}S:{{ .System }}\n{{ end }}U:{{ .Prompt }}\nA:{{ .Response }}<end>',
  templateKind: 'go',
  hasChatTemplate: true,
  system: 'be brief',
  license: 'MIT',
  ctx: 8192,
  parallel: 2,
  ggufPath: '/models/blobs/sha256-ab',
};
const limits = { slotCtx: 4096, parallel: 2, modelName: 'llama3:8b' };
const refusal = (f: () => unknown, status: number, re: RegExp) =>
  assert.throws(f, (e: unknown) => e instanceof OllamaApiError && e.status === status && re.test(e.message));

describe('Ollama API translation', () => {
  it('names the model once: the Ollama name or the file stem, :latest implied, any case', () => {
    assert.equal(servedModelName({ source: 'ollama', name: 'qwen3:0.6b', ggufPath: '/x/blobs/sha256-1' }), 'qwen3:0.6b');
    assert.equal(servedModelName({ source: 'file', name: '/m/Big-Model.Q4_K_M-00001-of-00003.gguf', ggufPath: '/m/Big-Model.Q4_K_M-00001-of-00003.gguf' }), 'Big-Model.Q4_K_M');
    const stem = { ...model, name: 'SmolLM2-135M-Instruct.Q4_1' };
    assert.ok(namesModel('smollm2-135m-instruct.q4_1:latest', stem));
    assert.ok(namesModel('LLAMA3:8b', model));
    assert.ok(!namesModel('llama3', model)); // llama3:latest is another tag
    refusal(() => requireModel({ model: 'mistral' }, model), 404, /"mistral" not found.*serves one model, "llama3:8b"/);
    refusal(() => requireModel({}, model), 400, /"model" is required/);
    refusal(() => parseBody('{"model": '), 400, /not valid JSON/);
    refusal(() => parseBody('[1]'), 400, /JSON object/);
  });

  it('maps options over the model params to llama-server fields, and refuses what the chain cannot do', () => {
    assert.deepEqual(samplingFields({ num_predict: 7, top_k: 3, min_p: 0.1, seed: 5, stop: 'x', repeat_penalty: 1.1, presence_penalty: 0.2, frequency_penalty: 0.3, num_gpu: 99 }, model.params, limits), {
      stop: ['x'],
      temperature: 0.6,
      n_predict: 7,
      top_k: 3,
      min_p: 0.1,
      seed: 5,
      repeat_penalty: 1.1,
      presence_penalty: 0.2,
      frequency_penalty: 0.3,
    });
    assert.equal(samplingFields({ num_predict: -2 }, {}, limits).n_predict, -1);
    refusal(() => samplingFields({ num_ctx: 8192 }, {}, limits), 400, /num_ctx 8192 is more than this chain's context of 4096 .*llama-relay up llama3:8b --ctx 16384/);
    assert.deepEqual(samplingFields({ num_ctx: 4096 }, {}, limits), {});
    refusal(() => samplingFields({ temperature: 'hot' }, {}, limits), 400, /"temperature" must be a number/);
    assert.deepEqual(formatFields('json'), { json_schema: { type: 'object' } });
    const schema = { type: 'object', properties: { age: { type: 'integer' } } };
    assert.deepEqual(formatFields(schema), { json_schema: schema });
    refusal(() => formatFields('yaml'), 400, /invalid format/);
  });

  it('turns a chat request into /v1/chat/completions, with the model system prompt, tools and think', () => {
    const body = chatToLlama(
      {
        model: 'llama3:8b',
        stream: false,
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: '', tool_calls: [{ function: { name: 'f', arguments: { a: 1 } } }] },
          { role: 'tool', content: '42', tool_name: 'f' },
        ],
        tools: [{ type: 'function', function: { name: 'f' } }],
        think: false,
        options: { temperature: 0 },
        format: 'json',
      },
      model,
      limits,
    );
    assert.equal(body.stream, false);
    assert.equal(body.temperature, 0);
    assert.deepEqual(body.chat_template_kwargs, { enable_thinking: false });
    assert.deepEqual(body.json_schema, { type: 'object' });
    const msgs = body.messages as Record<string, unknown>[];
    assert.deepEqual(msgs[0], { role: 'system', content: 'be brief' });
    assert.deepEqual((msgs[2]!.tool_calls as { function: unknown }[])[0]!.function, { name: 'f', arguments: '{"a":1}' });
    assert.equal(msgs[3]!.name, 'f');
    refusal(() => chatToLlama({ model: 'llama3:8b', messages: [{ role: 'user', content: 'x', images: ['AAAA'] }] }, model, limits), 400, /images are not supported/);
  });

  it('turns chat SSE chunks into NDJSON objects, tool calls whole, and the real timings at the end', () => {
    const s = new ChatStream('m');
    const now = new Date(0);
    assert.deepEqual(s.push('{"choices":[{"delta":{"role":"assistant","content":null}}]}', now), []);
    assert.deepEqual(s.push('{"choices":[{"delta":{"content":"Hel"}}]}', now), [{ model: 'm', created_at: now.toISOString(), message: { role: 'assistant', content: 'Hel' }, done: false }]);
    s.push('{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":"{\\"a\\""}}]}}]}', now);
    s.push('{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]}}]}', now);
    s.push('{"choices":[{"delta":{},"finish_reason":"length"}],"timings":{"prompt_n":5,"prompt_ms":10,"predicted_n":3,"predicted_ms":30.5}}', now);
    assert.deepEqual(s.push('[DONE]', now), []);
    const [calls, last] = s.end(50, now);
    assert.deepEqual((calls!.message as { tool_calls: unknown }).tool_calls, [{ function: { name: 'f', arguments: { a: 1 } } }]);
    assert.deepEqual(last, {
      model: 'm',
      created_at: now.toISOString(),
      message: { role: 'assistant', content: '' },
      done: true,
      done_reason: 'length',
      total_duration: 50_000_000,
      load_duration: 0,
      prompt_eval_count: 5,
      prompt_eval_duration: 10_000_000,
      eval_count: 3,
      eval_duration: 30_500_000,
    });
  });

  it('builds the generate prompt as Ollama does (template, system, raw, context) and returns the context ids', () => {
    assert.deepEqual(generateInput({ model: 'llama3:8b', prompt: 'Why?' }, model).plan, { kind: 'text', text: 'S:be brief\nU:Why?\nA:' });
    assert.deepEqual(generateInput({ model: 'llama3:8b', prompt: 'Why?', system: '' }, model).plan, { kind: 'text', text: 'U:Why?\nA:' });
    assert.deepEqual(generateInput({ model: 'llama3:8b', prompt: 'Why?', raw: true }, model).plan, { kind: 'text', text: 'Why?' });
    const jinja = { ...model, template: '{% for m in messages %}{% endfor %}', templateKind: 'jinja' as const, system: '' };
    assert.deepEqual(generateInput({ prompt: 'Hi' }, jinja).plan, { kind: 'chat-template', messages: [{ role: 'user', content: 'Hi' }] });
    assert.deepEqual(generateInput({ prompt: 'Hi' }, { ...jinja, hasChatTemplate: false, templateKind: 'none' }).plan, { kind: 'text', text: 'Hi' });
    assert.ok(generateInput({ model: 'x' }, model).loadOnly);
    refusal(() => generateInput({ prompt: 'x', images: ['AA'] }, model), 400, /images are not supported/);
    refusal(() => generateInput({ prompt: 'x', context: ['a'] }, model), 400, /"context"/);
    refusal(() => generateInput({ prompt: 'x', template: '{{ range .Messages }}{{ end }}' }, model), 400, /raw/);
    const body = generateToLlama({ stream: true, options: { num_predict: 4 } }, 'text', [1, 2], model, limits);
    assert.deepEqual(body.prompt, [1, 2, 'text']);
    assert.equal(body.return_tokens, true);
    assert.equal(body.n_predict, 4);

    const s = new GenerateStream('m');
    const now = new Date(0);
    assert.deepEqual(s.push('{"content":"a","tokens":[7],"stop":false}', now), [{ model: 'm', created_at: now.toISOString(), response: 'a', done: false }]);
    s.push('{"content":"b","tokens":[8],"stop":false}', now);
    s.push('{"content":"","tokens":[],"stop":true,"stop_type":"eos","timings":{"prompt_n":2,"prompt_ms":1,"predicted_n":2,"predicted_ms":2}}', now);
    assert.ok(s.stopped);
    const end = s.end([1, 2], 9, now);
    assert.deepEqual(end.context, [1, 2, 7, 8]);
    assert.equal(end.done_reason, 'stop');
    assert.equal(end.eval_count, 2);
  });

  it('renders the simple Go templates and refuses the rest', () => {
    assert.equal(renderPrompt('{{- if .System }}<s>{{ .System }}</s>{{ end -}}\n[INST] {{ .Prompt }} [/INST]', { System: 'sys', Prompt: 'p' }), '<s>sys</s>[INST] p [/INST]');
    assert.equal(renderPrompt('{{ if .System }}a{{ else }}b{{ end }}{{ .Prompt }}', { System: '', Prompt: 'p' }), 'bp');
    assert.equal(renderPrompt('{{ range .Messages }}{{ end }}', { System: '', Prompt: '' }), undefined);
    assert.equal(renderPrompt('{{ if .System }}unclosed', { System: '', Prompt: '' }), undefined);
  });

  it('describes the served model for tags, ps and show, and refuses model management', () => {
    assert.deepEqual(tagsResponse(model).models[0]!.name, 'llama3:8b');
    assert.equal(psResponse(model, 4096).models[0]!.context_length, 4096);
    const show = showResponse(model);
    assert.equal(show.template, model.template);
    assert.match(show.parameters, /^stop {27}"<\|eot_id\|>"\ntemperature {20}0\.6$/);
    assert.match(show.modelfile, /FROM \/models\/blobs\/sha256-ab\nTEMPLATE """/);
    assert.equal(parametersText({}), '');
    const e = managementRefusal('pull', model);
    assert.equal(e.status, 403);
    assert.match(e.message, /serves one model, "llama3:8b".*llama-relay up <model/);
  });
});
