// Describes the model `up` serves, for every API: its one name, Ollama-style details, params and template.
import { readFile, stat } from 'node:fs/promises';
import { loadGgufModel } from '../gguf/model.js';
import { fileTypeName } from '../gguf/file-types.js';
import { isGgufArray } from '../gguf/types.js';
import { parameterSize, servedModelName, type ServedModel } from '../ollama-api/served-model.js';
import { candidateRoots } from '../ollama/roots.js';
import { resolveModel } from '../ollama/resolve.js';
import { digestFromBlobName, identity } from '../provision/local-engine.js';

export async function describeServedModel(input: string, runtime: { ctx: number; parallel: number }): Promise<ServedModel> {
  const model = await resolveModel(input, candidateRoots());
  const gguf = await loadGgufModel(model.ggufPath);
  const md = gguf.metadata;
  const modelInfo: ServedModel['modelInfo'] = {};
  for (const k of md.keys()) {
    const v = md.get(k);
    if (v === undefined || isGgufArray(v) || k === 'tokenizer.chat_template') continue;
    modelInfo[k] = typeof v === 'bigint' ? Number(v) : v;
  }
  const params = gguf.tensors.reduce((a, t) => a + t.dims.reduce((x, d) => x * d, 1), 0);
  if (modelInfo['general.parameter_count'] === undefined) modelInfo['general.parameter_count'] = params;
  const arch = md.string('general.architecture') ?? 'unknown';
  const jinja = md.get('tokenizer.chat_template');
  const chatTemplate = typeof jinja === 'string' ? jinja : '';
  const license = model.ollama?.license ? await readFile(model.ollama.license, 'utf8').catch(() => '') : '';
  const generalLicense = md.get('general.license');
  return {
    name: servedModelName(model),
    size: gguf.fileBytes,
    digest: digestFromBlobName(model.ggufPath) ?? identity(model.ggufPath),
    modifiedAt: (await stat(model.ggufPath)).mtime.toISOString(),
    details: {
      parent_model: '',
      format: 'gguf',
      family: arch,
      families: [arch],
      parameter_size: parameterSize(params),
      quantization_level: fileTypeName(md.number('general.file_type')),
    },
    modelInfo,
    params: model.params ?? {},
    template: model.template ?? chatTemplate,
    templateKind: model.template ? 'go' : chatTemplate ? 'jinja' : 'none',
    hasChatTemplate: chatTemplate !== '',
    system: model.system ?? '',
    license: license || (typeof generalLicense === 'string' ? generalLicense : ''),
    ctx: runtime.ctx,
    parallel: runtime.parallel,
    ggufPath: model.ggufPath,
  };
}

/** When the model is not readable here (--layers with a path that exists only on the nodes): the name and little else. */
export function minimalServedModel(path: string, runtime: { ctx: number; parallel: number }): ServedModel {
  return {
    name: servedModelName({ source: 'file', name: path, ggufPath: path }),
    size: 0,
    digest: '',
    modifiedAt: new Date(0).toISOString(),
    details: { parent_model: '', format: 'gguf', family: '', families: [], parameter_size: '', quantization_level: '' },
    modelInfo: {},
    params: {},
    template: '',
    templateKind: 'none',
    hasChatTemplate: false,
    system: '',
    license: '',
    ctx: runtime.ctx,
    parallel: runtime.parallel,
    ggufPath: path,
  };
}
