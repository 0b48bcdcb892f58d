#!/usr/bin/env bash
# Runs the Fashion-MNIST accuracy checks and prints a Markdown table:
# the default recipe (5 epochs), 10 epochs with warm-up + cosine, every optimizer
# and every activation for 3 epochs, Maxout + Dropout, and the BGD / SGD batch modes.
# Usage: tools/accuracy_matrix.sh [lockstep binary]   (release build first)
set -euo pipefail
cd "$(dirname "$0")/.."
L=${1:-.build/release/lockstep}
out=$(mktemp -d)
row() {  # name, then lockstep train arguments
  local name=$1; shift
  "$L" train "$@" --metrics "$out/m.jsonl" > "$out/log" 2>&1 || { echo "| $name | FAILED: $(tail -1 "$out/log") |"; return; }
  python3 - "$name" "$out/m.jsonl" "$*" <<'PY'
import json, sys
name, path, args = sys.argv[1], sys.argv[2], sys.argv[3]
lines = [json.loads(l) for l in open(path)]
ep = [l for l in lines if l["event"] == "epoch"]
f = [l for l in lines if l["event"] == "final"][-1]
print(f"| {name} | `{args}` | {100*f['test_accuracy']:.2f}% | {ep[0]['loss']:.4f} → {ep[-1]['loss']:.4f} | {f['steps']} | {f['samples_per_second']:.0f} |")
PY
}
C=configs/fashion-mlp.toml
echo "| run | arguments | test accuracy | epoch loss first → last | steps | samples/s |"
echo "|---|---|---|---|---|---|"
row "default recipe, 5 epochs" --config $C --epochs 5
row "10 epochs, warm-up + cosine" --config configs/fashion-mlp-cosine.toml
for o in "sgd 0.1" "momentum 0.05" "nesterov 0.05" "adagrad 0.01" "adadelta 1.0" "rmsprop 0.001" "adam 0.001" "adamw 0.001"; do
  set -- $o
  row "optimizer $1" --config $C --epochs 3 --optimizer "$1" --lr "$2"
done
for a in relu leaky_relu sigmoid tanh maxout; do
  row "activation $a" --config $C --epochs 3 --activation $a
done
row "Maxout + Dropout" --config configs/fashion-maxout-dropout.toml --epochs 3
row "BGD (--batch-size full)" --config $C --epochs 3 --batch-size full --lr 0.5 --schedule constant
row "SGD (--batch-size 1)" --config $C --epochs 2 --batch-size 1 --max-steps 61000 --optimizer sgd --lr 0.005 --schedule constant
