// The head's log lines about resuming requests after a lost rank (engine patch 0007), as data. The supervisor reads
// every line the head prints, so a resume shorter than its /health poll is still seen. Pure.

import type { RelayEvent } from '../events/events.js';

/** requests: waiting or resumed (none for a failure, which is per request); rank: where the line names it. */
export type ResumeEvent = Extract<RelayEvent, { kind: 'resume' }>;

const withRank = (s: string): { rank?: number } => {
  const m = /\brank (\d+)/.exec(s);
  return m ? { rank: Number(m[1]) } : {};
};

/** undefined for every line that is not about a resume. */
export function parseResumeLine(line: string): ResumeEvent | undefined {
  // A failed request's error comes through the server's own error log, without the "llama-relay: " tag.
  if (/not back within .* \(--stage-resume-timeout\)|\(resumed \d+ times already\)/.test(line)) {
    const at = line.indexOf('llama-relay');
    const text = (at >= 0 ? line.slice(at) : line).replace(/^llama-relay: /, '').trim();
    return { kind: 'resume', phase: 'failed', ...withRank(text), detail: text };
  }
  const at = line.indexOf('llama-relay: ');
  if (at < 0) return undefined;
  const text = line.slice(at + 'llama-relay: '.length).trim();
  let m = /^resuming (\d+) request\(s\) after (.*)$/.exec(text);
  if (m) return { kind: 'resume', phase: 'waiting', requests: Number(m[1]), ...withRank(m[2]!), detail: text };
  m = /^resumed (\d+) request\(s\)/.exec(text);
  if (m) return { kind: 'resume', phase: 'resumed', requests: Number(m[1]), detail: text };
  return undefined;
}
