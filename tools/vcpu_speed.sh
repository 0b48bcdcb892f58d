#!/usr/bin/env bash
# How fast each vCPU runs right now: an AVX-512 FMA loop (12 independent chains, no
# memory traffic) pinned to each CPU in turn, SAMPLES times, GFLOP/s per CPU per line.
# On a dedicated core every figure is the FMA peak (64 FLOP/cycle × clock); on a shared
# host a vCPU whose physical core is given to another guest part of the time shows less.
# Usage: tools/vcpu_speed.sh [SAMPLES (default 10)]   (needs cc and taskset)
set -euo pipefail
samples=${1:-10}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/fma.c" <<'C'
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(void) {
    __m512 acc[12];
    for (int j = 0; j < 12; j++) acc[j] = _mm512_set1_ps(j * 0.001f);
    const __m512 b = _mm512_set1_ps(0.9999f), c = _mm512_set1_ps(1e-6f);
    const long steps = 5000000;  /* 60M FMAs of 16 lanes: ~0.3 s at full speed */
    double t0 = now();
    for (long i = 0; i < steps; i++) {
#pragma GCC unroll 12
        for (int j = 0; j < 12; j++) acc[j] = _mm512_fmadd_ps(acc[j], b, c);
    }
    double t = now() - t0;
    volatile float sink = 0;  /* keeps the chains live */
    for (int j = 0; j < 12; j++) sink += _mm512_reduce_add_ps(acc[j]);
    printf("%.0f\n", steps * 12.0 * 32 / t / 1e9);
    return 0;
}
C
cc -O2 -mavx512f -mfma "$tmp/fma.c" -o "$tmp/fma"
cpus=$(nproc)
printf "time"; for c in $(seq 0 $((cpus - 1))); do printf "\tcpu%d GFLOP/s" "$c"; done; echo
for s in $(seq 1 "$samples"); do
  printf "%s" "$(date +%T)"
  for c in $(seq 0 $((cpus - 1))); do printf "\t%s" "$(taskset -c "$c" "$tmp/fma")"; done
  echo
  sleep 2
done
