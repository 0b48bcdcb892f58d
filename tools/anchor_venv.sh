#!/usr/bin/env bash
# A Python environment with CPU torch for the anchors in ../shared/anchors (torch DDP
# in `lockstep bench cluster`, the trajectory test): .build/anchor-venv by default.
#   tools/anchor_venv.sh [DIR]
#   .build/release/lockstep bench cluster --python .build/anchor-venv/bin/python
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:-$root/.build/anchor-venv}
python3 -m venv "$venv"
"$venv/bin/pip" install -q numpy mpmath safetensors
# The CPU build of torch, without pulling CUDA wheels.
"$venv/bin/pip" install -q --no-deps "torch==2.13.0+cpu" typing_extensions sympy networkx jinja2 fsspec filelock
"$venv/bin/python" -c 'import torch; print("torch", torch.__version__, "in", "'"$venv"'")'
