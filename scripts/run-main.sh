#!/usr/bin/env bash
# Quick start, command 1: install, build, run the exact-score benchmark with the default config.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
./build/retort bench-gmm --config configs/gmm-ring8.toml --out out/gmm-ring8 "$@"
