#!/usr/bin/env bash
# Development flow for the engine patches.
#   scripts/patches.sh checkout   clone the pinned source to $DEV and apply patches/*.patch as commits (branch relay)
#   scripts/patches.sh export     write the commits on $DEV's relay branch back to patches/ as numbered files;
#                                 the layer-loop patch must equal a fresh run of patches/tools/stage-loops.py
# Env: LLAMA_RELAY_CACHE (default ~/.cache/llama-relay), DEV (default $LLAMA_RELAY_CACHE/src/llama.cpp-dev)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${LLAMA_RELAY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llama-relay}
# shellcheck disable=SC1091
. "$root/third_party/llama.cpp.pin"
stock="$cache/src/llama.cpp-${COMMIT:0:12}"
dev=${DEV:-$cache/src/llama.cpp-dev}
die() { echo "patches: error: $*" >&2; exit 1; }

case "${1:-}" in
  checkout)
    [ -d "$stock/.git" ] || bash "$root/scripts/build-llama.sh" --stock-only >/dev/null
    [ -e "$dev" ] && die "$dev exists; remove it first"
    git clone -q "$stock" "$dev"
    git -C "$dev" -c advice.detachedHead=false checkout -q -b relay "$COMMIT"
    for p in "$root"/patches/[0-9]*.patch; do
      git -C "$dev" am -q "$p" || die "$(basename "$p") does not apply: fix it in $dev (git am --continue), then export"
    done
    echo "$dev"
    ;;
  export)
    [ -d "$dev/.git" ] || die "no development tree at $dev (scripts/patches.sh checkout)"
    n=$(git -C "$dev" rev-list --count "$COMMIT..relay")
    [ "$n" -gt 0 ] || die "no commits on relay above the pin"
    # the generated loop edit must be reproducible from the script
    loops=$(git -C "$dev" log --format=%H --grep '^stage: run each builder' "$COMMIT..relay" | head -n1)
    if [ -n "$loops" ]; then
      tmp=$(mktemp -d)
      git -C "$dev" worktree add -q --detach "$tmp/t" "$loops^"
      python3 "$root/patches/tools/stage-loops.py" "$tmp/t" --archs-json "$root/src/plan/splittable-archs.json" 2>/dev/null
      git -C "$tmp/t" add -A src/models src/llama-stage-archs.cpp
      if ! git -C "$tmp/t" diff --cached --quiet "$loops" -- src/models src/llama-stage-archs.cpp; then
        git -C "$dev" worktree remove --force "$tmp/t"
        die "the layer-loop commit differs from a fresh run of patches/tools/stage-loops.py: regenerate it"
      fi
      git -C "$dev" worktree remove --force "$tmp/t"
      rm -rf "$tmp"
    fi
    rm -f "$root"/patches/[0-9]*.patch
    git -C "$dev" format-patch -q --zero-commit --no-signature --no-numbered -o "$root/patches" "$COMMIT..relay"
    # stable names: drop the subject slug's volatile parts
    ls "$root"/patches/[0-9]*.patch
    ;;
  *) sed -n 2,6p "$0"; exit 2 ;;
esac
