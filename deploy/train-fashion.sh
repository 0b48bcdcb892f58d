#!/usr/bin/env bash
# The main job: install what is missing, build release, train the Fashion-MNIST
# MLP (configs/fashion-mlp.toml, 5 epochs), write metrics to runs/fashion-mlp.jsonl.
# Extra arguments go to `lockstep train` (e.g. --workers 2, --epochs 10).
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
swift build -c release
mkdir -p runs
exec .build/release/lockstep train --config configs/fashion-mlp.toml --metrics runs/fashion-mlp.jsonl "$@"
