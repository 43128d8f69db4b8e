// The latency of a link between two nodes: the round trip of TCP connects from one to a port the other listens on,
// halved (a connect is a SYN and its SYN-ACK). Pure: the script a node runs (bash's /dev/tcp timed by
// $EPOCHREALTIME, so no process starts between the two clock reads) and the parser of its lines.

/** Connects per measurement; the median is taken. */
export const LINK_SAMPLES = 9;

/** `bash -c` script: $1 host, $2 port, $3 samples; one "start end" line (seconds, microsecond digits) per connect. */
export const LINK_SCRIPT = [
  'export LC_ALL=C',
  '[ -n "$EPOCHREALTIME" ] || { echo "no EPOCHREALTIME (bash < 5)" >&2; exit 3; }',
  'i=0',
  'while [ "$i" -lt "$3" ]; do',
  '  s=$EPOCHREALTIME',
  '  exec 3<>"/dev/tcp/$1/$2" || exit 4',
  '  e=$EPOCHREALTIME',
  '  exec 3>&-',
  '  echo "$s $e"',
  '  i=$((i + 1))',
  'done',
].join('\n');

export const linkArgv = (host: string, port: number, samples = LINK_SAMPLES): string[] => ['bash', '-c', LINK_SCRIPT, 'link', host, String(port), String(samples)];

/** The median of connect times, in seconds. */
export function medianSeconds(samples: readonly number[]): number | undefined {
  const xs = samples.filter((x) => Number.isFinite(x) && x >= 0).sort((a, b) => a - b);
  if (!xs.length) return undefined;
  const mid = xs.length >> 1;
  return xs.length % 2 ? xs[mid]! : (xs[mid - 1]! + xs[mid]!) / 2;
}

/** The script's output as one-way seconds (half the median connect); undefined when no line parses. */
export function parseLinkProbe(stdout: string): number | undefined {
  const times = stdout
    .split('\n')
    .map((l) => /^(\d+\.\d+) (\d+\.\d+)$/.exec(l.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[2]) - Number(m[1]));
  const median = medianSeconds(times);
  return median === undefined ? undefined : median / 2;
}
