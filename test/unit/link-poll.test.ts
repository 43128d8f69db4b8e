// Which ranks busy-poll their links: only those with a core to themselves.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkLinkPoll, hasOwnCore, linkPollWindows } from '../../src/runtime/link-poll.js';
import { UserError } from '../../src/errors.js';

describe('linkPollWindows', () => {
  it('polls on machines of their own, not where ranks share one unpinned', () => {
    assert.deepEqual(linkPollWindows([{ machine: 'a' }, { machine: 'b' }, { machine: 'c' }], 1000), [1000, 1000, 1000]);
    assert.deepEqual(linkPollWindows([{ machine: 'a' }, { machine: 'b' }, { machine: 'b' }], 1000), [1000, undefined, undefined]);
    assert.deepEqual(linkPollWindows([{ machine: 'local' }, { machine: 'local' }], 1000), [undefined, undefined]);
  });
  it('pinned ranks of one machine poll when their cores differ', () => {
    assert.deepEqual(linkPollWindows([{ machine: 'local', core: 0 }, { machine: 'local', core: 1 }], 500), [500, 500]);
    assert.deepEqual(linkPollWindows([{ machine: 'local', core: 0 }, { machine: 'local', core: 1 }, { machine: 'local', core: 0 }], 500), [undefined, 500, undefined]);
    // one pinned, one not: the unpinned one may run on the pinned one's core
    assert.equal(hasOwnCore([{ machine: 'local', core: 0 }, { machine: 'local' }], 0), false);
  });
  it('a window of 0 turns it off everywhere', () => {
    assert.deepEqual(linkPollWindows([{ machine: 'a' }, { machine: 'b' }], 0), [undefined, undefined]);
  });
  it('checks --link-poll', () => {
    for (const ok of [undefined, 0, 1000, 1_000_000]) checkLinkPoll(ok);
    for (const bad of [-1, 1.5, 1_000_001, Number.NaN]) assert.throws(() => checkLinkPoll(bad), UserError);
  });
});
