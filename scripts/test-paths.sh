#!/usr/bin/env bash
# Runs the kernel and model tests again on every kernel path below the CPU's best (RLHF_CPU caps the path
# for the whole process; see README "CPU paths"). The native path runs in the full suite. Expects a built
# release test bundle (`swift test -c release -Xswiftc -enable-testing` first).
set -euo pipefail
cd "$(dirname "$0")/.."
paths=(portable)
if grep -qw avx512f /proc/cpuinfo 2>/dev/null && grep -qw avx2 /proc/cpuinfo; then paths+=(avx2); fi
for p in "${paths[@]}"; do
    echo "== kernel and model tests with RLHF_CPU=$p"
    RLHF_CPU=$p swift test -c release -Xswiftc -enable-testing --skip-build --filter 'TensorCoreTests|ModelsTests'
done
