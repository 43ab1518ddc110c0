#!/usr/bin/env bash
# Builds weft-bench in release mode and runs the in-process scheduler benchmark:
# 100,000 replicas (1,000 deployments × 100) on 5,000 nodes by default; prints a markdown table.
# Usage: bench/scheduler/run.sh [--nodes N] [--deployments N] [--replicas N] [--runs N] [--policy P|both] [--seed N]
# SCRATCH=path picks the build directory (default .build).
set -euo pipefail
cd "$(dirname "$0")/../.."
scratch=(--scratch-path "${SCRATCH:-.build}")
swift build -c release "${scratch[@]}" --product weft-bench >&2
bin=$(swift build -c release "${scratch[@]}" --show-bin-path)
echo "machine: $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p')), $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr); date: $(date -u +%F); commit: $(git rev-parse --short HEAD)"
"$bin/weft-bench" scheduler "$@"
