// Every command is one typed yargs CommandModule in its own file; register it here.
import type { CommandModule } from 'yargs';
import { fixtureCommand } from './fixture.js';
import { sliceCommand } from './slice.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [fixtureCommand, sliceCommand];
