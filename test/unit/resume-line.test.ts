// The head's resume log lines (engine patch 0007) as the supervisor reads them; the lines are the engine's own format.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseResumeLine } from '../../src/runtime/resume-line.js';

const cases: [string, string, ReturnType<typeof parseResumeLine>][] = [
  [
    'waiting, with the lost rank named',
    '0.12.345.678 W llama-relay: resuming 2 request(s) after rank 1 (127.0.0.1:40001) was lost: connection reset by peer',
    { kind: 'resume', phase: 'waiting', requests: 2, rank: 1, detail: 'resuming 2 request(s) after rank 1 (127.0.0.1:40001) was lost: connection reset by peer' },
  ],
  ['resumed', 'srv  update_slots: llama-relay: resumed 2 request(s)', { kind: 'resume', phase: 'resumed', requests: 2, detail: 'resumed 2 request(s)' }],
  [
    'failed past the bound',
    'srv  update_slots: llama-relay: rank 2 (127.0.0.1:4) was lost. The rank was not back within 4 s (--stage-resume-timeout).',
    { kind: 'resume', phase: 'failed', rank: 2, detail: 'rank 2 (127.0.0.1:4) was lost. The rank was not back within 4 s (--stage-resume-timeout).' },
  ],
  [
    'failed past --stage-resume-max',
    'slot send_error: id  0 | task 7 | error: llama-relay chain error: rank 1 was lost (resumed 2 times already)',
    { kind: 'resume', phase: 'failed', rank: 1, detail: 'llama-relay chain error: rank 1 was lost (resumed 2 times already)' },
  ],
  ['a resume of one request in the log, not a state change', 'llama-relay: resuming a request after 20 generated tokens (prompt 9 tokens, slot 0)', undefined],
  ['other engine lines', 'llama-relay: the chain failed again while resuming (ret = -3)', undefined],
  ['ordinary server lines', 'srv  log_server_r: request: POST /completion 127.0.0.1 200', undefined],
];

for (const [name, line, want] of cases) {
  test(`parseResumeLine: ${name}`, () => assert.deepEqual(parseResumeLine(line), want));
}
