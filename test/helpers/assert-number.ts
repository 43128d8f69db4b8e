// A figure a real run must have produced: a finite number above zero (never a timing bound).
import assert from 'node:assert/strict';

export const positive = (x: unknown, what: string) => assert.ok(typeof x === 'number' && Number.isFinite(x) && x > 0, `${what} = ${String(x)}`);
