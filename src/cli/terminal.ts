// Whether the Ink TUI suits this run: a terminal on stdout, no --json, and not a CI job. Ink draws only the final
// frame when it detects CI (the same is-in-ci check), so a CI job with a terminal gets the plain lines instead.
import isInCi from 'is-in-ci';

export function tuiFits(json: boolean): boolean {
  return !!process.stdout.isTTY && !json && !isInCi;
}
