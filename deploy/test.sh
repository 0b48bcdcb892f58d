#!/usr/bin/env bash
# The test suite: install what is missing, then every test in a release build
# (kernels are ~1000x slower in debug). Multi-process tests start the real
# executables, so everything is built first.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
swift build -c release
# XCTest only: the suite has no Swift Testing tests, and its empty "0 tests" summary
# would otherwise be the last line printed.
swift test -c release --disable-swift-testing "$@"
