#!/usr/bin/env bash
# Fuzzes the readers of untrusted input with libFuzzer + AddressSanitizer (Sources/FuzzTargets).
#
#   bash scripts/fuzz.sh TARGET|all [SECONDS]    # targets: gguf safetensors tokenizer template jsonl config peft
#   bash scripts/fuzz.sh template 1800                   # 30 minutes on the chat-template parser and interpreter
#
# Seeds come from the project's own writers (written by the target itself); the corpus grows in
# fuzz/corpus/TARGET, findings land in fuzz/findings/TARGET (crash-*, leak-*, timeout-*, oom-*). Every finding
# becomes a regression test: copy it to Tests/FuzzRegressionTests/Findings/TARGET/ (the suite replays them all).
# Prints executions per second and the corpus size per target.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(gguf safetensors tokenizer template jsonl config peft)
which=${1:?usage: scripts/fuzz.sh TARGET|all [SECONDS]}
seconds=${2:-60}
[ "$which" = all ] || targets=("$which")

RLHF_FUZZ=1 swift build -c release --scratch-path .build/fuzz --product FuzzTargets \
    -Xswiftc -sanitize=fuzzer,address 2>&1 | grep -E "error|warning: |Build" | tail -5
bin=.build/fuzz/release/FuzzTargets
export TMPDIR=/dev/shm ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1

for t in "${targets[@]}"; do
    corpus=fuzz/corpus/$t seeds=fuzz/seeds/$t findings=fuzz/findings/$t
    mkdir -p "$corpus" "$findings"
    RLHF_FUZZ_TARGET=$t RLHF_FUZZ_SEEDS=$seeds "$bin" >/dev/null
    log=fuzz/$t.log
    # -rss_limit_mb: a hostile file may not make the process take more than 2 GB; -timeout: 10 s per input.
    # Inputs up to the largest seed (a whole small GGUF), so mutations reach the tensor data too.
    RLHF_FUZZ_TARGET=$t "$bin" "$corpus" "$seeds" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$findings/" -print_final_stats=1 >"$log" 2>&1 || true
    rm -rf "$TMPDIR"/rlhf-fuzz-*  # scratch files a crashed run left
    execs=$(grep -E "stat::number_of_executed_units" "$log" | awk '{s += $2} END {print s + 0}')
    rate=$(grep -E "stat::average_exec_per_sec" "$log" | awk '{s += $2} END {print s + 0}')
    found=$(find "$findings" -type f | wc -l)
    echo "$t: $execs executions in ${seconds} s ($rate/s), corpus $(find "$corpus" -type f | wc -l) files, $found findings"
done
