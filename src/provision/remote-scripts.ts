// The shell run on nodes, as argv data: building the shipped source, and the slice file operations.

/** CMake flags of the patched build (kept in step with scripts/build-llama.sh). */
export function llamaCmakeFlags(backend: 'cpu' | 'cuda' | 'metal', arch: string): string[] {
  const flags = [
    '-DCMAKE_BUILD_TYPE=Release', '-DBUILD_SHARED_LIBS=OFF', '-DGGML_RPC=ON', '-DLLAMA_BUILD_TESTS=OFF', '-DLLAMA_BUILD_EXAMPLES=OFF',
    '-DLLAMA_BUILD_UI=OFF', '-DLLAMA_USE_PREBUILT_UI=OFF', '-DLLAMA_OPENSSL=OFF', '-DLLAMA_BUILD_APP=OFF',
  ];
  if (backend === 'cpu') {
    flags.push('-DGGML_NATIVE=ON');
    // AMX: some VMs advertise it without enabling it (see build-llama.sh).
    if (arch === 'x86_64') flags.push('-DCMAKE_C_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16', '-DCMAKE_CXX_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16');
  }
  if (backend === 'cuda') flags.push('-DGGML_NATIVE=ON', '-DGGML_CUDA=ON');
  if (backend === 'metal') flags.push('-DGGML_METAL=ON');
  return flags;
}

const BUILD_SCRIPT = [
  'set -e',
  'src=$1 build=$2 out=$3 jobs=$4; shift 4',
  'gen="Unix Makefiles"; command -v ninja >/dev/null 2>&1 && gen=Ninja',
  'cmake -S "$src" -B "$build" -G "$gen" "$@"',
  // In the background, so a TERM to the group lets the build tool stop its own jobs first: ninja runs each job in its
  // own process group and signals them itself, and the wrapper's SIGKILL sweep comes only after this script exits.
  'set +e',
  'if [ "$gen" = Ninja ]; then ninja -C "$build" -j "$jobs" llama-server & else cmake --build "$build" --target llama-server -j "$jobs" & fi',
  'b=$!',
  `trap 'kill -TERM "$b" 2>/dev/null' TERM INT HUP`,
  'while :; do wait "$b"; code=$?; kill -0 "$b" 2>/dev/null || break; done',
  '[ "$code" -eq 0 ] || exit "$code"',
  'set -e',
  'bin=$build/bin/llama-server; [ -x "$bin" ] || bin=$build/llama-server',
  '[ -x "$bin" ] || { echo "the build produced no llama-server" >&2; exit 1; }',
  'mkdir -p "$(dirname "$out")"',
  'cp "$bin" "$out.incoming" && chmod +x "$out.incoming" && mv -f "$out.incoming" "$out"',
].join('\n');

export function buildArgv(o: { sourceDir: string; buildDir: string; out: string; jobs: number; cmakeFlags: readonly string[] }): string[] {
  return ['sh', '-c', BUILD_SCRIPT, 'build', o.sourceDir, o.buildDir, o.out, String(o.jobs), ...o.cmakeFlags];
}

/** Empties a directory the source tree is extracted into (a half-extracted tree from an earlier run must go). */
export const resetDirArgv = (dir: string): string[] => ['sh', '-c', 'rm -rf "$1" && mkdir -p "$1"', 'reset', dir];

/** Makes an uploaded file executable and moves it into place, so the final name only ever holds a whole binary. */
export const installBinaryArgv = (incoming: string, to: string): string[] => [
  'sh', '-c', 'chmod +x "$1" && mv -f "$1" "$2"', 'install', incoming, to,
];

/** Sizes of a slice on the node: `final=N` when verified and in place, `part=N` for an interrupted upload. */
export const sliceStateArgv = (path: string): string[] => [
  'sh', '-c', '[ -f "$1" ] && echo "final=$(wc -c <"$1")"; [ -f "$1.part" ] && echo "part=$(wc -c <"$1.part")"; exit 0', 'state', path,
];

export function parseSliceState(stdout: string): { final?: number; part?: number } {
  const out: { final?: number; part?: number } = {};
  for (const m of stdout.matchAll(/^(final|part)=\s*(\d+)\s*$/gm)) out[m[1] as 'final' | 'part'] = Number(m[2]);
  return out;
}

/** sha256 of a file's first `bytes` bytes (or all of it), printed as 64 hex digits. */
export const remoteDigestArgv = (path: string, bytes?: number): string[] =>
  bytes === undefined
    ? ['sh', '-c', 'sha256sum <"$1" | cut -c1-64', 'digest', path]
    : ['sh', '-c', 'head -c "$2" <"$1" | sha256sum | cut -c1-64', 'digest', path, String(bytes)];

/** Appends stdin to `path` (or truncates first, when not resuming). */
export const appendArgv = (path: string, resume: boolean): string[] => [
  'sh', '-c', `mkdir -p "$(dirname "$1")" && cat ${resume ? '>>' : '>'} "$1"`, 'append', path,
];

/** Moves a verified upload into place. */
export const commitArgv = (part: string, final: string): string[] => ['sh', '-c', 'mv -f "$1" "$2"', 'commit', part, final];
export const removeArgv = (path: string): string[] => ['rm', '-f', path];
