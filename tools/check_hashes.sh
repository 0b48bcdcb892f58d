#!/usr/bin/env bash
# Checks that the Fashion-MNIST MLP trains to the recorded parameter hashes
# (2 epochs, five ways: data- and kernel-parallel threads, 2 workers over tcp
# and shm, 2 workers sharded with Adam). A changed hash means the arithmetic
# changed. Usage: tools/check_hashes.sh [path/to/lockstep]
set -euo pipefail
cd "$(dirname "$0")/.."
L=${1:-.build/release/lockstep}
C=configs/fashion-mlp.toml
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail=0
check() {
  local name=$1 want=$2; shift 2
  "$L" train --config "$C" --epochs 2 --metrics "$dir/$name.jsonl" "$@" > "$dir/$name.log" 2>&1 || {
    echo "FAIL $name: exited non-zero"; tail -3 "$dir/$name.log"; fail=1; return; }
  local got
  got=$(tail -1 "$dir/$name.jsonl" | grep -o '"parameter_hash":"[0-9a-f]*"' | cut -d'"' -f4)
  if [ "$got" = "$want" ]; then echo "ok   $name $got"; else echo "FAIL $name: hash $got, recorded $want"; fail=1; fi
}
check threads-data    935ea4083853acf5
check threads-kernel  4532685585f521fd --thread-parallelism kernel
check workers2-tcp    5a135f7daa5458b2 --workers 2 --threads 1
check workers2-shm    5a135f7daa5458b2 --workers 2 --threads 1 --transport shm
check workers2-sharded-adam ab174e144bd10ae4 --workers 2 --step-mode sharded --optimizer adam --lr 0.001
exit $fail
