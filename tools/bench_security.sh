#!/usr/bin/env bash
# What CurveZMQ costs, measured side by side: plain and curve alternate, ROUNDS
# times, for (1) `lockstep bench allreduce` (2 processes, loopback TCP, busbw at
# 1 and 16 MiB) and (2) `lockstep bench train` (2 workers over loopback TCP,
# samples/s); prints each round and the medians' ratios curve/plain.
#   tools/bench_security.sh [ROUNDS] [CONFIG]     # default 3, configs/fashion-mlp.toml
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}; config=${2:-configs/fashion-mlp.toml}
L=.build/release/lockstep
[ -x "$L" ] || swift build -c release
declare -A busbw1 busbw16 samples
for round in $(seq "$rounds"); do
  for security in plain curve; do
    out=$("$L" bench allreduce --workers 2 --sizes 1M,16M --ops allreduce --iterations 30 --security "$security" --json)
    read -r b1 b16 < <(python3 -c 'import json,sys; r=json.load(sys.stdin)["results"]; print(*[x["busbwGBps"] for x in sorted(r, key=lambda x: x["bytes"])])' <<<"$out")
    s=$("$L" bench train --config "$config" --workers 2 --threads 2 --max-steps 150 --security "$security" --json 2>/dev/null \
        | python3 -c 'import json,sys; print([r for r in json.load(sys.stdin)["rows"] if r["mode"]=="weak" and r["workers"]==2][0]["samples_per_second"])')
    busbw1[$security]+="$b1 "; busbw16[$security]+="$b16 "; samples[$security]+="$s "
    echo "round $round $security: busbw 1 MiB $b1 GB/s, 16 MiB $b16 GB/s; training $s samples/s"
  done
done
python3 - "${busbw1[plain]}" "${busbw1[curve]}" "${busbw16[plain]}" "${busbw16[curve]}" "${samples[plain]}" "${samples[curve]}" <<'PY'
import statistics, sys
m = [statistics.median(float(x) for x in a.split()) for a in sys.argv[1:]]
print(f"\n| measure | plain | curve | curve/plain |\n|---|---:|---:|---:|")
for name, p, c in [("all-reduce busbw, 1 MiB (GB/s)", m[0], m[1]), ("all-reduce busbw, 16 MiB (GB/s)", m[2], m[3]),
                   ("2-worker training (samples/s)", m[4], m[5])]:
    print(f"| {name} | {p:.3g} | {c:.3g} | {c / p:.2f}× |")
PY
