// Every command is one typed yargs CommandModule in its own file; register it here.
import type { CommandModule } from 'yargs';
import { benchCommand } from './bench.js';
import { discoverCommand } from './discover.js';
import { fixtureCommand } from './fixture.js';
import { planCommand } from './plan.js';
import { sliceCommand } from './slice.js';
import { upCommand } from './up.js';
import { nodeCommand } from './node.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [discoverCommand, planCommand, fixtureCommand, sliceCommand, upCommand, benchCommand, nodeCommand];
