// `llama-relay slice`: write one rank's GGUF slice of a model (hidden; used by the engine and for debugging).
import type { CommandModule } from 'yargs';
import { UserError } from '../../errors.js';
import { loadGgufModel } from '../../gguf/model.js';
import { writeRankSlice } from '../../gguf/slice.js';

interface Args {
  model: string;
  layers: string;
  head: boolean;
  output: string;
}

export const sliceCommand: CommandModule<object, Args> = {
  command: 'slice <model>',
  describe: false,
  builder: (y) =>
    y
      .positional('model', { type: 'string', demandOption: true, describe: 'a .gguf file (or the first file of a split set)' })
      .option('layers', { type: 'string', demandOption: true, describe: 'layer range START:END (END exclusive)' })
      .option('head', { type: 'boolean', default: false, describe: 'also include token_embd, output_norm and output' })
      .option('output', { alias: 'o', type: 'string', demandOption: true }),
  handler: async (a) => {
    const m = /^(\d+):(\d+)$/.exec(a.layers);
    if (!m) throw new UserError(`--layers must look like START:END, got "${a.layers}"`);
    const [layerStart, layerEnd] = [Number(m[1]), Number(m[2])];
    const model = await loadGgufModel(a.model);
    const nLayer = model.metadata.number(`${model.metadata.string('general.architecture')}.block_count`) ?? 0;
    if (layerStart >= layerEnd || layerEnd > nLayer) {
      throw new UserError(`--layers ${a.layers} is not a non-empty range within the model's ${nLayer} layers`);
    }
    const r = await writeRankSlice(model, { layerStart, layerEnd, head: a.head }, a.output);
    process.stdout.write(`${a.output}: ${r.tensors} tensors, ${r.bytes} bytes of tensor data\n`);
  },
};
