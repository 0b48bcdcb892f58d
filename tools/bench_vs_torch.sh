#!/usr/bin/env bash
# End-to-end throughput against the PyTorch anchors, measured in the same run:
#   single process, 2 threads  vs  torch 1 process × 2 threads
#   2 workers × 1 thread        vs  torch DDP (gloo) 2 × 1 thread with exact CPU SyncBN
# and Lockstep's own 2-worker / 1-process efficiency. Two workers run twice: with
# the default data plane (ZeroMQ over loopback TCP, replicated optimizer) and with
# shared memory and the sharded optimizer (--transport shm --step-mode sharded;
# same parameters bit for bit). Fashion-MNIST MLP, batch 128
# per worker, SGD momentum, median epoch samples/s over EPOCHS epochs, REPEATS rounds.
# Usage: tools/bench_vs_torch.sh [anchors dir (default ../shared/anchors)]
set -euo pipefail
cd "$(dirname "$0")/.."
A=${1:-${ANCHORS:-../shared/anchors}}
[ -f "$A/mlp_torch.py" ] || { echo "error: $A/mlp_torch.py not found; pass the anchors directory" >&2; exit 1; }
EPOCHS=${EPOCHS:-3}; REPEATS=${REPEATS:-2}
L=.build/release/lockstep
tmp=$(mktemp -d)
lock() {  # median epoch samples/s of a Lockstep run
  "$L" train --config configs/fashion-mlp.toml --epochs "$EPOCHS" --schedule constant --metrics "$tmp/m.jsonl" "$@" > "$tmp/log" 2>&1
  python3 -c "
import json,statistics,sys
e=[json.loads(l) for l in open('$tmp/m.jsonl')]
print(statistics.median([x['samples_per_second'] for x in e if x['event']=='epoch']))"
}
torch() {
  python3 "$A/mlp_torch.py" --epochs "$EPOCHS" "$@" 2>/dev/null | tail -1 | python3 -c "import json,sys; print(json.load(sys.stdin)['sps_median'])"
}
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; epochs $EPOCHS, rounds $REPEATS"
echo "| round | Lockstep 1×2 | torch 1×2 | ratio | Lockstep 2 workers×1 tcp | Lockstep 2 workers×1 shm sharded | torch DDP 2×1 | ratio tcp | ratio shm | Lockstep 2w / 1p tcp | shm |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for r in $(seq 1 "$REPEATS"); do
  l1=$(lock --threads 2); t1=$(torch --world 1 --threads 2 --batch 128)
  l2=$(lock --workers 2 --threads 1); l3=$(lock --workers 2 --threads 1 --transport shm --step-mode sharded)
  t2=$(torch --world 2 --threads 1 --batch 128 --bn sync --port $((29600 + r)))
  python3 -c "print('| $r | %.0f | %.0f | %.2f× | %.0f | %.0f | %.0f | %.2f× | %.2f× | %.2f | %.2f |' % ($l1, $t1, $l1/$t1, $l2, $l3, $t2, $l2/$t2, $l3/$t2, $l2/$l1, $l3/$l1))"
done
