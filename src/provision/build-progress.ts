// Build progress from the build tool's output: ninja's `[n/N]` and make's `[ 45%]`.

/** 0..1 from one line of build output, or undefined if the line carries no progress. */
export function buildProgress(line: string): number | undefined {
  const ninja = /^\[(\d+)\/(\d+)\]/.exec(line);
  if (ninja) {
    const [n, total] = [Number(ninja[1]), Number(ninja[2])];
    return total > 0 ? Math.min(1, n / total) : undefined;
  }
  const make = /^\[\s*(\d+)%\]/.exec(line);
  if (make) return Math.min(1, Number(make[1]) / 100);
  return undefined;
}
