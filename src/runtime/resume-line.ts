// The head's log lines about resuming requests after a lost rank (engine patch 0007), as data. The supervisor reads
// every line the head prints, so a resume shorter than its /health poll is still seen. Pure.

export type ResumePhase = 'waiting' | 'resumed' | 'failed';

export interface ResumeLine {
  readonly phase: ResumePhase;
  /** Requests waiting or resumed (unknown for a failure, which is per request). */
  readonly requests?: number;
  /** The lost rank, where the line names it. */
  readonly rank?: number;
  /** What the engine said, from its own words on. */
  readonly detail: string;
}

const rankOf = (s: string): number | undefined => {
  const m = /\brank (\d+)/.exec(s);
  return m ? Number(m[1]) : undefined;
};

/** undefined for every line that is not about a resume. */
export function parseResumeLine(line: string): ResumeLine | undefined {
  // A failed request's error comes through the server's own error log, without the "llama-relay: " tag.
  if (/not back within .* \(--stage-resume-timeout\)|\(resumed \d+ times already\)/.test(line)) {
    const at = line.indexOf('llama-relay');
    const text = (at >= 0 ? line.slice(at) : line).replace(/^llama-relay: /, '').trim();
    return { phase: 'failed', rank: rankOf(text), detail: text };
  }
  const at = line.indexOf('llama-relay: ');
  if (at < 0) return undefined;
  const text = line.slice(at + 'llama-relay: '.length).trim();
  let m = /^resuming (\d+) request\(s\) after (.*)$/.exec(text);
  if (m) return { phase: 'waiting', requests: Number(m[1]), rank: rankOf(m[2]!), detail: text };
  m = /^resumed (\d+) request\(s\)/.exec(text);
  if (m) return { phase: 'resumed', requests: Number(m[1]), detail: text };
  return undefined;
}
