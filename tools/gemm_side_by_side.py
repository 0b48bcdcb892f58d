#!/usr/bin/env python3
"""Lockstep SGEMM vs numpy/OpenBLAS, side by side, interleaved shape by shape.

For each round, each thread count and each shape, times numpy (same method as
shared/anchors/sgemm_bench.py: reps so one run >= 0.15 s, median of 5) and then
`lockstep bench gemm --shape ...` in the same minute, so load from other users
hits both alike. Prints medians over rounds and the ratio ours/numpy.

One-thread runs are pinned, numpy and ours alike, to one CPU (--cpu, default 0): on a
shared host one vCPU often runs at half speed while the other does not, so two
unpinned processes may land on vCPUs of different speeds (tools/vcpu_speed.sh).

Run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset, e.g.
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 tools/gemm_side_by_side.py --rounds 3
"""
import argparse, os, statistics, subprocess, sys, time
import numpy as np
from threadpoolctl import threadpool_limits

def shapes_all():
    s = [(n, n, n, "") for n in (128, 256, 512, 1024, 2048)]
    s += [(m, k, n, "") for m in (128, 256) for k in (784, 512) for n in (512, 256, 10)]
    for bt in (128, 256):
        s += [(784, bt, 512, "At"), (512, bt, 256, "At"), (256, bt, 10, "At"),
              (bt, 512, 784, "Bt"), (bt, 256, 512, "Bt"), (bt, 10, 256, "Bt")]
    return s

rng = np.random.default_rng(0)

def numpy_rate(m, k, n, op, min_time=0.15, runs=5):
    # numpy's matmul on a transposed view hands OpenBLAS the transposed operand (no copy).
    A = rng.standard_normal((k, m) if op == "At" else (m, k), dtype=np.float32)
    B = rng.standard_normal((n, k) if op == "Bt" else (k, n), dtype=np.float32)
    A = A.T if op == "At" else A
    B = B.T if op == "Bt" else B
    C = np.empty((m, n), dtype=np.float32)
    np.matmul(A, B, out=C)
    reps = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(reps): np.matmul(A, B, out=C)
        if time.perf_counter() - t0 >= min_time: break
        reps *= 2
    r = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(reps): np.matmul(A, B, out=C)
        r.append(2.0 * m * k * n / ((time.perf_counter() - t0) / reps) / 1e9)
    return statistics.median(r)

def ours_rate(binary, m, k, n, op, threads, kernel):
    spec = f"{m}x{k}x{n}" + (f":{op}" if op else "")
    env = dict(os.environ)
    if kernel: env["LOCKSTEP_GEMM"] = kernel
    out = subprocess.run([binary, "bench", "gemm", "--threads", str(threads), "--shape", spec],
                         capture_output=True, text=True, env=env, check=True).stdout
    header = [l for l in out.splitlines() if l.startswith("kernel:")]
    columns = [c.strip() for c in [l for l in out.splitlines() if l.startswith("| M |")][0].split("|")]
    row = [l for l in out.splitlines() if l.startswith(f"| {m} | {k} | {n} |")][0]
    return float(row.split("|")[columns.index("GFLOP/s (median)")]), (header[0] if header else "?")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=".build/release/lockstep")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--kernel", default="", help="LOCKSTEP_GEMM for ours (default: auto)")
    ap.add_argument("--only", default="", help="comma list of MxKxN[:op] to run (default: all)")
    ap.add_argument("--cpu", type=int, default=0, help="CPU that one-thread runs are pinned to (-1: none)")
    args = ap.parse_args()
    shapes = shapes_all()
    if args.only:
        want = set(args.only.split(","))
        shapes = [s for s in shapes if (f"{s[0]}x{s[1]}x{s[2]}" + (f":{s[3]}" if s[3] else "")) in want]
    threads = [int(t) for t in args.threads.split(",")]
    res = {}
    kernel_line = "?"
    every_cpu = os.sched_getaffinity(0)
    for r in range(args.rounds):
        for t in threads:
            # Children (our benchmark) inherit the affinity.
            os.sched_setaffinity(0, {args.cpu} if t == 1 and args.cpu >= 0 else every_cpu)
            for (m, k, n, op) in shapes:
                with threadpool_limits(limits=t, user_api="blas"):
                    npv = numpy_rate(m, k, n, op)
                time.sleep(0.2)  # let OpenBLAS's workers stop spinning
                ov, kernel_line = ours_rate(args.binary, m, k, n, op, t, args.kernel)
                res.setdefault((t, m, k, n, op), []).append((npv, ov))
        print(f"round {r + 1}/{args.rounds} done; load avg {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
    os.sched_setaffinity(0, every_cpu)
    pinned = f"; one-thread runs pinned to cpu {args.cpu}" if args.cpu >= 0 and 1 in threads else ""
    print(f"ours: {kernel_line}; numpy/OpenBLAS: {np.__version__}, medians of {args.rounds} interleaved rounds (each a median of 5 timed runs){pinned}")
    print("| threads | M | K | N | op | numpy GFLOP/s | ours GFLOP/s | ours/numpy | per-round ratios |")
    print("|---:|---:|---:|---:|:---:|---:|---:|---:|:---|")
    for (t, m, k, n, op), v in res.items():
        npm = statistics.median(x[0] for x in v); om = statistics.median(x[1] for x in v)
        ratios = " ".join(f"{o / p:.2f}" for p, o in v)
        opname = {"": "A·B", "At": "Aᵀ·B", "Bt": "A·Bᵀ"}[op]
        print(f"| {t} | {m} | {k} | {n} | {opname} | {npm:.1f} | {om:.1f} | {om / npm:.2f} | {ratios} |")

if __name__ == "__main__":
    main()
