#!/usr/bin/env bash
# The test suite: install what is missing, then every test in a release build
# (kernels are ~1000x slower in debug). Multi-process tests start the real
# executables, so everything is built first.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
swift build -c release
swift test -c release "$@"
