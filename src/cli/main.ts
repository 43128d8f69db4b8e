// Entry point: parse argv with yargs, dispatch to a thin command module, render any error once.
import yargs from 'yargs';
import { formatError, UserError } from '../errors.js';
import { commands } from './commands/index.js';

export async function main(argv: string[]): Promise<number> {
  let parser = yargs(argv)
    .scriptName('llama-relay')
    .strict()
    .strictCommands()
    .demandCommand(1, 'Name a command; see --help.')
    .recommendCommands()
    .help()
    .version(false)
    .fail((msg, err) => {
      throw err ?? new UserError(msg ?? 'invalid arguments', ['run `llama-relay --help`']);
    });
  for (const c of commands) parser = parser.command(c);
  try {
    await parser.parseAsync();
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    process.stderr.write(`${formatError(err)}\n`);
    return err instanceof UserError ? 2 : 1;
  }
}
