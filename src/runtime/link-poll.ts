// Which ranks busy-poll their links (the engine's --stage-poll). At one stream a rank that idles through most of its
// wait for the next frame runs the chain slower than one that keeps polling (patches/README.md, session 9); the spin
// takes a core, so only a rank that has one to itself (no other rank of the chain on its machine, or pinned to distinct
// cores) spins. Pure.
import { UserError } from '../errors.js';

/** The default spin window, in microseconds around the expected frame (`up`/`node`/`bench --link-poll`): most of a wait. */
export const LINK_POLL_US = 10_000;

/** Where a rank runs: its machine, and its core when pinned there. */
export interface RankSeat {
  readonly machine: string;
  readonly core?: number | undefined;
}

/** Whether rank i shares no core with another rank: alone on its machine, or pinned to a core no other rank there has. */
export function hasOwnCore(seats: readonly RankSeat[], i: number): boolean {
  const me = seats[i]!;
  return seats.every((s, j) => j === i || s.machine !== me.machine || (me.core !== undefined && s.core !== undefined && s.core !== me.core));
}

/** Per rank, its --stage-poll window: windowUs (the user's --link-poll, else LINK_POLL_US) where it has a core to itself, else undefined (off). */
export function linkPollWindows(seats: readonly RankSeat[], windowUs: number | undefined): (number | undefined)[] {
  const w = windowUs ?? LINK_POLL_US;
  return seats.map((_, i) => (w > 0 && hasOwnCore(seats, i) ? w : undefined));
}

/** `--link-poll US`, checked before anything starts. */
export function checkLinkPoll(us: number | undefined): void {
  if (us !== undefined && !(Number.isInteger(us) && us >= 0 && us <= 1_000_000)) {
    throw new UserError(`--link-poll must be a whole number of microseconds from 0 to 1000000, not ${us}`, [
      `${LINK_POLL_US} (the default): ranks with a core to themselves spin up to ${LINK_POLL_US} µs around each expected frame`,
      '0: every rank sleeps until its frame arrives',
    ]);
  }
}
