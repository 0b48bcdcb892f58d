#!/usr/bin/env bash
# Fuzz Lockstep's decoders (wire frames, control messages, config, IDX, safetensors)
# for as long as asked, from the committed corpus, with a fresh seed each run:
#   tools/fuzz.sh [SECONDS_PER_TARGET] [TARGET ...]      # default 60 s, all targets
# On a crash the process dies with a backtrace, and the input that caused it is
# runs/fuzz/TARGET-current: copy it into Tests/Fuzz/corpus/TARGET/ once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}; shift || true
[ -x .build/release/lockstep ] || swift build -c release
mkdir -p runs/fuzz
seed=$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')
echo "fuzz: seed $seed, $seconds s per target"
TMPDIR=${TMPDIR:-/dev/shm/} exec .build/release/lockstep fuzz "$@" --seconds "$seconds" --seed "$seed" \
  --corpus Tests/Fuzz/corpus --artifacts runs/fuzz
