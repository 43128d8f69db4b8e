// `llama-relay fixture`: write a random-weight test model of a real architecture (hidden from --help).
import type { CommandModule } from 'yargs';
import { FIXTURE_ARCHS, type FixtureArch } from '../../gguf/fixture/archs.js';
import { writeFixtureModel } from '../../gguf/fixture/fixture-model.js';

interface Args {
  arch: FixtureArch;
  layers: number;
  embd: number;
  heads: number;
  'heads-kv': number;
  ff: number;
  ctx: number;
  'head-dim'?: number;
  experts?: number;
  'experts-used'?: number;
  'expert-ff'?: number;
  'sliding-window'?: number;
  'swa-pattern'?: number;
  tied?: boolean;
  vocab: string;
  output: string;
  seed: number;
  type: 'f32' | 'f16';
}

export const fixtureCommand: CommandModule<object, Args> = {
  command: 'fixture',
  describe: false,
  builder: (y) =>
    y
      .option('arch', { choices: FIXTURE_ARCHS, demandOption: true, describe: 'architecture' })
      .option('layers', { type: 'number', default: 4 })
      .option('embd', { type: 'number', default: 64 })
      .option('heads', { type: 'number', default: 4 })
      .option('heads-kv', { type: 'number', default: 2 })
      .option('ff', { type: 'number', default: 128 })
      .option('ctx', { type: 'number', default: 2048, describe: 'training context length' })
      .option('head-dim', { type: 'number' })
      .option('experts', { type: 'number', describe: 'qwen3moe: expert count' })
      .option('experts-used', { type: 'number' })
      .option('expert-ff', { type: 'number' })
      .option('sliding-window', { type: 'number', describe: 'gemma3: SWA window' })
      .option('swa-pattern', { type: 'number', describe: 'gemma3: every Nth layer is full attention' })
      .option('tied', { type: 'boolean', describe: 'omit output.weight (tied embeddings)' })
      .option('vocab', { type: 'string', demandOption: true, describe: 'GGUF to copy tokenizer.* keys from' })
      .option('output', { alias: 'o', type: 'string', demandOption: true })
      .option('seed', { type: 'number', default: 1 })
      .option('type', { choices: ['f32', 'f16'] as const, default: 'f32' as const }),
  handler: async (a) => {
    await writeFixtureModel(a.output, {
      arch: a.arch,
      layers: a.layers,
      embd: a.embd,
      heads: a.heads,
      headsKv: a['heads-kv'],
      ff: a.ff,
      ctx: a.ctx,
      headDim: a['head-dim'],
      experts: a.experts,
      expertsUsed: a['experts-used'],
      expertFf: a['expert-ff'],
      slidingWindow: a['sliding-window'],
      swaPattern: a['swa-pattern'],
      tied: a.tied,
      vocab: a.vocab,
      seed: a.seed,
      type: a.type,
    });
    process.stdout.write(`${a.output}\n`);
  },
};
