// Skips that cannot pass silently: under CI=true a missing prerequisite fails the test; elsewhere the test is skipped
// and says what is missing and how to install it.
import type { TestContext } from 'node:test';

export const inCi = (): boolean => process.env.CI === 'true';

/** Skips `t` because `missing` is absent (or throws under CI=true, where every prerequisite is installed by .ci/run). */
export function skipOrFail(t: TestContext, missing: string, install: string): void {
  if (inCi()) throw new Error(`${missing} (CI=true: a missing prerequisite is a failure; .ci/run installs it): ${install}`);
  t.skip(`${missing}: ${install}`);
}
