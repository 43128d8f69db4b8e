#!/usr/bin/env bash
# The project's test command (README and .ci/run call this): typecheck, unit tests, then
# integration tests, which need the llama.cpp builds (scripts/build-llama.sh) and sshd.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc --noEmit -p .
shopt -s nullglob
unit=(test/unit/*.test.ts test/unit/*.test.tsx)
integ=(test/integration/*.test.ts)
node --import tsx --test --test-concurrency=1 "${unit[@]}" "${integ[@]}"
