#!/usr/bin/env bash
# Lockstep's all-reduce beside torch.distributed/gloo and raw ZeroMQ, in one run
# on this machine (shared machines are noisy: compare only numbers from the
# same run).
#
# Usage: tools/bench_allreduce_vs_gloo.sh [ANCHORS_DIR]
#   ANCHORS_DIR (or $LOCKSTEP_ANCHORS; default ../shared/anchors relative to the
#   repository root) must hold allreduce_bench.py and zmq_c_bench.sh.
# Environment: WORLDS ("2 4"), TRANSPORT (tcp|ipc|shm, default tcp; raw ZeroMQ
#   has no shared memory, so shm is set beside its tcp figure), TRIALS (gloo
#   trials, 3), LOCKSTEP_RUNS (Lockstep runs per N, median taken, 3),
#   LOCKSTEP_BIN (default .build/release/lockstep; build with swift build -c release).
# Prints a Markdown table: busbw of both and their ratio per size, the 4 KiB
# latency ratio, and the raw ZeroMQ PUSH/PULL 16 MiB throughput with the share
# of it that Lockstep's 16 MiB all-reduce busbw reaches.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
anchors=${1:-${LOCKSTEP_ANCHORS:-$root/../shared/anchors}}
if [ ! -f "$anchors/allreduce_bench.py" ] || [ ! -f "$anchors/zmq_c_bench.sh" ]; then
  echo "error: no anchors in '$anchors' (need allreduce_bench.py and zmq_c_bench.sh);" \
       "pass the anchors directory as the first argument or set LOCKSTEP_ANCHORS" >&2
  exit 2
fi
anchors=$(cd "$anchors" && pwd)
lockstep=${LOCKSTEP_BIN:-$root/.build/release/lockstep}
if [ ! -x "$lockstep" ]; then
  echo "error: $lockstep not found; run 'swift build -c release' first (or set LOCKSTEP_BIN)" >&2
  exit 2
fi
worlds=${WORLDS:-2 4}
transport=${TRANSPORT:-tcp}
trials=${TRIALS:-3}
runs=${LOCKSTEP_RUNS:-3}
sizes=4K,16K,64K,256K,1M,4M,16M,64M   # the gloo anchor's sizes: 4 KiB · 4^k
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for n in $worlds; do
  echo "gloo, N=$n ..." >&2
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE timeout 1200 \
    python3 "$anchors/allreduce_bench.py" --world "$n" --trials "$trials" --port $((29500 + 17 * n)) > "$tmp/gloo$n.txt"
  for k in $(seq 1 "$runs"); do
    echo "lockstep, N=$n, run $k ..." >&2
    timeout 1200 "$lockstep" bench allreduce --workers "$n" --transport "$transport" --ops allreduce \
      --sizes "$sizes" --json > "$tmp/lockstep$n.$k.json"
  done
done
echo "raw ZeroMQ (zmq_c_bench.sh) ..." >&2
timeout 1200 bash "$anchors/zmq_c_bench.sh" > "$tmp/zmq.txt"

python3 - "$tmp" "$transport" "$worlds" <<'PY'
import glob, json, re, statistics, sys
tmp, transport, worlds = sys.argv[1], sys.argv[2], [int(w) for w in sys.argv[3].split()]
def gloo(n):
    rows = {}
    for line in open(f"{tmp}/gloo{n}.txt"):
        f = line.split()
        if len(f) >= 5 and f[0].isdigit():
            rows[int(f[0])] = (float(f[2]), float(f[4]))   # time_us, busbw
    return rows
def lockstep(n):
    runs = [json.load(open(p)) for p in sorted(glob.glob(f"{tmp}/lockstep{n}.*.json"))]
    rows = {}
    for size in sorted({r["bytes"] for r in runs[0]["results"]}):
        mine = [r for run in runs for r in run["results"] if r["bytes"] == size and r["op"] == "allreduce"]
        rows[size] = (statistics.median(r["timeMicroseconds"] for r in mine),
                      statistics.median(r["busbwGBps"] for r in mine), mine[0]["algorithm"])
    return rows, runs[0]
raw_transport = "tcp" if transport == "shm" else transport
raw = [float(m.group(1)) for line in open(f"{tmp}/zmq.txt")
       if f"ep={raw_transport}:" in line and "size=16777216" in line and "curve=0" in line
       for m in [re.search(r"([0-9.]+) GB/s", line)] if m]
raw16 = statistics.median(raw) if raw else None
first = None
print("| N | size (B) | algorithm | gloo time (µs) | Lockstep time (µs) | time ratio (L/g) | gloo busbw (GB/s) | Lockstep busbw (GB/s) | busbw ratio (L/g) |")
print("|---:|---:|---|---:|---:|---:|---:|---:|---:|")
summary = []
for n in worlds:
    g = gloo(n); l, meta = lockstep(n); first = first or meta
    for size in sorted(set(g) & set(l)):
        gt, gb = g[size]; lt, lb, alg = l[size]
        print(f"| {n} | {size} | {alg} | {gt:.1f} | {lt:.1f} | {lt/gt:.3f} | {gb:.3f} | {lb:.3f} | {lb/gb:.2f} |")
    if 4096 in g and 4096 in l:
        summary.append(f"- N={n}: 4 KiB latency Lockstep {l[4096][0]:.1f} µs vs gloo {g[4096][0]:.1f} µs: ratio {l[4096][0]/g[4096][0]:.3f} (goal ≤ 0.2)")
    big = [s for s in (1 << 20, 16 << 20) if s in g and s in l]
    for s in big:
        summary.append(f"- N={n}: {s >> 20} MiB busbw ratio Lockstep/gloo {l[s][1]/g[s][1]:.2f} (goal ≥ 2)")
    if raw16 and (16 << 20) in l:
        summary.append(f"- N={n}: 16 MiB all-reduce busbw {l[16 << 20][1]:.3f} GB/s = {100*l[16 << 20][1]/raw16:.0f}% of raw ZeroMQ PUSH/PULL "
                       f"{raw_transport} 16 MiB ({raw16:.3f} GB/s, median of {len(raw)}; goal ≥ 80%)")
print()
m = first["machine"]
print(f"Machine: {m['cpu']}, {m['cores']} logical cores (shared); libzmq {m['libzmq']}; transport {transport}; "
      f"Lockstep chunk {first['chunkBytes']} B, small-message threshold {first['smallMessageThreshold']} B; "
      f"Lockstep figures are medians over runs, gloo's the median over its trials.")
print()
print("\n".join(summary))
PY
