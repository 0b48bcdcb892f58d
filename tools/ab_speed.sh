#!/usr/bin/env bash
# A/B of two Lockstep builds on this machine, alternating runs so both see the same
# noise: median epoch samples/s of the Fashion-MNIST MLP (1 process × 2 threads;
# 2 workers × 1 thread over tcp; over shm with the sharded optimizer) and
# `bench gemm` GFLOP/s on the training shapes, ROUNDS rounds (default 4).
# Usage: tools/ab_speed.sh OLD_BUILD_DIR NEW_BUILD_DIR   (each holding lockstep, lockstep-coordinator, lockstep-worker)
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1; B=$2; ROUNDS=${ROUNDS:-4}; EPOCHS=${EPOCHS:-2}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
run() {  # build, then lockstep train flags: prints the median epoch samples/s
  local bin=$1; shift
  "$bin/lockstep" train --config configs/fashion-mlp.toml --epochs "$EPOCHS" --schedule constant --metrics "$tmp/m.jsonl" "$@" > "$tmp/log" 2>&1
  python3 -c "
import json,statistics
e=[json.loads(l) for l in open('$tmp/m.jsonl')]
print(round(statistics.median([x['samples_per_second'] for x in e if x['event']=='epoch'])))"
}
gemm() {  # build: median GFLOP/s over the training shapes, 2 threads
  "$1/lockstep" bench gemm --threads 2 --json --shape 128x784x512:Bt --shape 512x128x784:At --shape 128x512x784 \
    --shape 128x512x256:Bt --shape 256x128x512:At 2>/dev/null | python3 -c "
import json,sys,statistics
print(round(statistics.median([r['gflops'] for r in json.load(sys.stdin)]),1))"
}
declare -A sums
echo "| round | case | old | new | new/old |"
echo "|---|---|---:|---:|---:|"
for r in $(seq 1 "$ROUNDS"); do
  for case in single tcp shm gemm; do
    for side in old new; do
      bin=$A; [ $side = new ] && bin=$B
      # Alternate which build goes first from round to round.
      if [ $((r % 2)) = 0 ]; then [ $side = old ] && bin=$B || bin=$A; fi
      who=$([ "$bin" = "$A" ] && echo old || echo new)
      case $case in
        single) v=$(run "$bin" --threads 2) ;;
        tcp) v=$(run "$bin" --workers 2 --threads 1) ;;
        shm) v=$(run "$bin" --workers 2 --threads 1 --transport shm --step-mode sharded) ;;
        gemm) v=$(gemm "$bin") ;;
      esac
      eval "v_$who=$v"
    done
    echo "| $r | $case | $v_old | $v_new | $(python3 -c "print('%.3f' % ($v_new/$v_old))") |"
  done
done
