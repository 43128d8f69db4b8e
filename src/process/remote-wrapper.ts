// A POSIX sh wrapper that gives every rank (local or over ssh) one process group, killed when the launcher goes away.
// sshd does not signal pty-less commands when the connection drops, so the wrapper watches its stdin instead.
import { BugError } from '../errors.js';

/** Marker in the wrapper's argv ($0), so tests and stale-run checks can find it with pgrep -f. */
export const WRAPPER_NAME = 'llama-relay-wrapper';

export const wrapperScript = String.raw`set -u
rundir=$1 name=$2 grace=$3 beat=$4 secretvar=$5
shift 5
[ "$#" -gt 0 ] && [ "$1" = -- ] && shift
# In a subshell: once the link is gone stderr is a broken pipe, and SIGPIPE must not kill the wrapper itself.
say() { ( printf 'llama-relay-wrapper: %s\n' "$*" >&2 ); }
uid=$(id -u)
# Per-user runtime dir where the session has one (private by design), else a per-uid dir under TMPDIR.
if [ "$rundir" = - ]; then
  if [ -n "$` + '{XDG_RUNTIME_DIR:-}' + String.raw`" ] && [ -d "$XDG_RUNTIME_DIR" ]; then rundir=$XDG_RUNTIME_DIR/llama-relay
  else rundir=$` + '{TMPDIR:-/tmp}' + String.raw`/llama-relay-$uid; fi
fi
node=$(uname -n 2>/dev/null || echo '?')
refuse() { say "run dir $rundir on node $node: $*; refusing to start"; exit 125; }
umask 077
# A dir another local user made first would hand them the pidfile the stale-run kill trusts and the files we truncate.
[ -L "$rundir" ] && refuse "is a symlink"
[ -e "$rundir" ] || mkdir -p "$rundir" 2>/dev/null || [ -d "$rundir" ] || refuse "cannot be created"
[ -L "$rundir" ] && refuse "is a symlink"
[ -d "$rundir" ] || refuse "is not a directory"
# Field N of ls -ldn (1: mode, 3: numeric owner): POSIX, unlike the flags of stat.
field() { _n=$1; set -- $(ls -ldn "$2" 2>/dev/null); eval "echo \"\$` + '{$_n:-?}' + String.raw`\""; }
mode=$(field 1 "$rundir") owner=$(field 3 "$rundir")
[ "$owner" = "$uid" ] || refuse "is owned by uid $owner, not by uid $uid"
case $mode in drwx------|drwx------[.@]) ;; *) refuse "has mode $mode, not drwx------ (0700)";; esac
pidfile=$rundir/$name.pid
beatfile=$rundir/$name.beat
for f in "$pidfile" "$beatfile"; do [ -L "$f" ] && refuse "holds a symlink at $f"; done
# A stale run of the same name (launcher killed, link lost) is stopped before starting again.
if [ -f "$pidfile" ]; then
  old=$(cat "$pidfile" 2>/dev/null || true)
  case $old in
    ''|*[!0-9]*) ;;
    *) if kill -0 "-$old" 2>/dev/null; then
         say "stale run pgid=$old found; stopping it"
         kill -TERM "-$old" 2>/dev/null
         i=0
         while [ "$i" -lt "$grace" ] && kill -0 "-$old" 2>/dev/null; do sleep 1; i=$((i+1)); done
         kill -KILL "-$old" 2>/dev/null
       fi ;;
  esac
  rm -f "$pidfile"
fi
if [ "$secretvar" != - ]; then
  IFS= read -r secret || { say "expected the launch secret on stdin"; exit 125; }
  export "$secretvar=$secret"
  unset secret
fi
case $1 in "~/"*) cmd=$HOME/$` + '{1#"~/"}' + String.raw`; shift; set -- "$cmd" "$@";; esac
command -v "$1" >/dev/null 2>&1 || { say "command not found: $1"; exit 127; }
me=$$
exec 3<&0
# The command gets its own process group (setsid, else perl), so one kill reaches all its descendants.
if command -v setsid >/dev/null 2>&1; then
  setsid "$@" </dev/null 3<&- &
elif command -v perl >/dev/null 2>&1; then
  perl -e 'setpgrp(0,0); exec @ARGV or die "exec $ARGV[0]: $!\n"' "$@" </dev/null 3<&- &
else
  "$@" </dev/null 3<&- &
fi
child=$!
echo "$child" > "$pidfile"
say "started pgid=$child"
# Traps go in before the watcher exists: a USR1 without a trap would kill the wrapper and orphan the command.
stopping=0 killer=
stop() {
  [ "$stopping" = 1 ] && return
  stopping=1
  say "stopping pgid=$child ($1)"
  kill -TERM "-$child" 2>/dev/null || kill -TERM "$child" 2>/dev/null
  ( sleep "$grace"; kill -KILL "-$child" 2>/dev/null || kill -KILL "$child" 2>/dev/null ) </dev/null >/dev/null 2>&1 &
  killer=$!
}
trap 'stop "launcher gone"' USR1
trap 'stop "signal"' INT TERM HUP
# Watcher: EOF on stdin means the launcher or its ssh link is gone.
( while IFS= read -r _l; do [ "$beat" -gt 0 ] && : > "$beatfile"; done; kill -USR1 "$me" 2>/dev/null ) <&3 >/dev/null 2>&1 &
watcher=$!
exec 3<&-
deadman=
if [ "$beat" -gt 0 ]; then
  # Deadman: no heartbeat line for a whole period means the link is cut silently.
  : > "$beatfile"
  ( while sleep "$beat"; do if [ -e "$beatfile" ]; then rm -f "$beatfile"; else kill -USR1 "$me" 2>/dev/null; break; fi; done ) </dev/null >/dev/null 2>&1 &
  deadman=$!
fi
while :; do
  wait "$child"
  code=$?
  # A trapped signal interrupts wait early (code 128+sig); wait again while the child lives.
  kill -0 "$child" 2>/dev/null && continue
  # The shell may have reaped it while the trap ran; one more wait returns its recorded status (127: none left).
  wait "$child" 2>/dev/null
  again=$?
  [ "$again" -ne 127 ] && code=$again
  break
done
kill -KILL "-$child" 2>/dev/null
kill $watcher $deadman $killer 2>/dev/null
rm -f "$pidfile" "$beatfile"
say "exited code=$code"
exit "$code"
`;

export interface WrapperOptions {
  /** Names the pidfile; a later run with the same name cleans up a stale one. */
  name: string;
  /** Directory for pidfiles on the node; default $XDG_RUNTIME_DIR/llama-relay there, else $TMPDIR/llama-relay-$UID. It must be the user's own, 0700, not a symlink. */
  runDir?: string;
  /** Seconds between SIGTERM and SIGKILL. */
  graceSeconds?: number;
  /** Seconds without a heartbeat line before the wrapper assumes the link is dead; 0 disables. */
  heartbeatSeconds?: number;
  /** Env var that receives the first stdin line (the launch secret), or none. */
  secretEnv?: string;
}

/** argv that runs `command` under the wrapper: ['sh', '-c', script, name, ...]. */
export function wrapperArgv(command: readonly string[], o: WrapperOptions): string[] {
  if (!/^[A-Za-z0-9_.-]+$/.test(o.name)) throw new BugError(`wrapper name must be a plain word: ${o.name}`);
  return [
    'sh', '-c', wrapperScript, WRAPPER_NAME,
    o.runDir ?? '-',
    o.name,
    String(o.graceSeconds ?? 3),
    String(o.heartbeatSeconds ?? 0),
    o.secretEnv ?? '-',
    '--',
    ...command,
  ];
}

/** Parses the wrapper's own stderr lines ("llama-relay-wrapper: started pgid=123"). */
export function parseWrapperLine(line: string): { event: 'started' | 'stale' | 'stopping' | 'exited'; value: number } | undefined {
  // Not anchored: the command shares the wrapper's stderr, and its log thread may have left half a line there.
  const m = /llama-relay-wrapper: (?:(started) pgid=(\d+)|stale run pgid=(\d+)|(stopping) pgid=(\d+)|exited code=(\d+))/.exec(line);
  if (!m) return undefined;
  if (m[1]) return { event: 'started', value: Number(m[2]) };
  if (m[3]) return { event: 'stale', value: Number(m[3]) };
  if (m[4]) return { event: 'stopping', value: Number(m[5]) };
  return { event: 'exited', value: Number(m[6]) };
}

/** The wrapper's refusal of its run dir (another user's, a symlink, too open), from a run's stderr lines. */
export function runDirRefusal(stderrLines: readonly string[]): { path: string; reason: string } | undefined {
  for (const line of stderrLines) {
    const m = /^llama-relay-wrapper: run dir (.+) on node \S+: (.+); refusing to start$/.exec(line);
    if (m) return { path: m[1]!, reason: m[2]! };
  }
  return undefined;
}
