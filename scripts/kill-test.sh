#!/usr/bin/env bash
# Crash-safety check: each trainer is killed with SIGKILL at random moments (checkpoint writes included: a
# checkpoint is saved every step) and resumed, KILLS times, then run to the end; its final weights must equal
# an uninterrupted run's bit for bit, and every resume must find a readable checkpoint.
#
#   bash scripts/kill-test.sh [trainer …]     # trainers: sft reward dpo grpo rloo ppo (default: all)
#   KILLS=20 STEPS=40 bash scripts/kill-test.sh sft
#
# Needs the release build (`swift build -c release -Xswiftc -enable-testing`) and the default model
# (`bash scripts/bootstrap.sh`). Synthetic data only; the work directory is removed at the end unless KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${KILLS:-20}
steps=${STEPS:-60}
rlhf=${RLHF_BIN:-.build/release/rlhf}
[ -x "$rlhf" ] || { echo "kill-test: $rlhf is missing; build first: swift build -c release -Xswiftc -enable-testing" >&2; exit 2; }
trainers=("$@")
[ ${#trainers[@]} -gt 0 ] || trainers=(sft reward dpo grpo rloo ppo)
work=$(mktemp -d /tmp/rlhf-kill-test.XXXXXX)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT

# Synthetic data in TRL's formats (sums of two numbers).
python3 - "$work" <<'EOF'
import json, random, sys
d = sys.argv[1]
r = random.Random(0)
def q():
    a, b = r.randrange(50), r.randrange(50)
    return f"What is {a} plus {b}?", a + b
with open(f"{d}/sft.jsonl", "w") as f:
    for _ in range(256):
        p, s = q(); f.write(json.dumps({"prompt": p, "completion": f" {s}."}) + "\n")
with open(f"{d}/pairs.jsonl", "w") as f:
    for _ in range(256):
        p, s = q(); f.write(json.dumps({"prompt": p, "chosen": f" {s}.", "rejected": f" {s + r.randrange(1, 9)}."}) + "\n")
with open(f"{d}/prompts.jsonl", "w") as f:
    for _ in range(64):
        p, _ = q(); f.write(json.dumps({"prompt": p}) + "\n")
EOF

common=(--max-steps "$steps" --batch-size 2 --max-length 48 --seed 7 --set save_steps=1 --set logging_steps=1
    --set save_total_limit=2)
args_for() {
    case $1 in
    sft) echo "--data $work/sft.jsonl" ;;
    reward | dpo) echo "--data $work/pairs.jsonl" ;;
    grpo | rloo) echo "--prompts $work/prompts.jsonl --reward-fn length:6 --set max_completion_length=8 --set num_generations=2" ;;
    ppo) echo "--prompts $work/prompts.jsonl --reward $work/reward-reference --set response_length=8" ;;
    *) echo "kill-test: unknown trainer $1" >&2; exit 2 ;;
    esac
}

# The trained weights of an output directory: the final adapter (LoRA) or model.
weights() { ls "$1"/adapter/*.safetensors "$1"/model/*.safetensors 2>/dev/null | sort; }

failed=0
for t in "${trainers[@]}"; do
    if [ "$t" = ppo ] && [ ! -d "$work/reward-reference" ]; then
        "$rlhf" reward $(args_for reward) --out "$work/reward-reference" "${common[@]}" >/dev/null 2>&1
    fi
    ref="$work/$t-reference" out="$work/$t-killed"
    start=$(date +%s.%N)
    # shellcheck disable=SC2046
    "$rlhf" "$t" $(args_for "$t") --out "$ref" "${common[@]}" >"$work/$t-reference.log" 2>&1 || {
        echo "$t: the uninterrupted run failed:" >&2; tail -5 "$work/$t-reference.log" >&2; failed=1; continue
    }
    [ "$t" = reward ] && cp -r "$ref" "$work/reward-reference" 2>/dev/null || true
    seconds=$(python3 -c "import time; print(round(time.time() - $start, 1))")
    n=0 finished=0 during_save=0
    while [ $n -lt "$kills" ]; do
        resume=()
        [ -f "$out/latest" ] && resume=(--resume "$out")
        # shellcheck disable=SC2046
        "$rlhf" "$t" $(args_for "$t") --out "$out" "${common[@]}" "${resume[@]}" >>"$work/$t-killed.log" 2>&1 &
        pid=$!
        # A random moment within a sixteenth of the whole run's time (at least 0.3 s: sometimes during start-up).
        sleep "$(python3 -c "import random; print(round(random.uniform(0.3, max(0.6, $seconds / 16)), 2))")"
        if kill -0 "$pid" 2>/dev/null; then
            # A staging directory on disk at the moment of the kill: killed while writing a checkpoint.
            kill -9 "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            if compgen -G "$out/.checkpoint-*" >/dev/null; then during_save=$((during_save + 1)); fi
            n=$((n + 1))
        else
            wait "$pid" || { echo "$t: a resumed run failed (kill $n):" >&2; tail -5 "$work/$t-killed.log" >&2; failed=1; break; }
            finished=1
            break
        fi
    done
    if [ $finished = 0 ]; then
        resume=()
        [ -f "$out/latest" ] && resume=(--resume "$out")
        # shellcheck disable=SC2046
        "$rlhf" "$t" $(args_for "$t") --out "$out" "${common[@]}" "${resume[@]}" >>"$work/$t-killed.log" 2>&1 || {
            echo "$t: the final resume failed:" >&2; tail -5 "$work/$t-killed.log" >&2; failed=1; continue
        }
    fi
    same=1
    for f in $(weights "$ref"); do
        cmp -s "$f" "$out/${f#"$ref"/}" || same=0
    done
    [ -n "$(weights "$ref")" ] || same=0
    if [ $n -lt "$kills" ]; then
        echo "$t: the run finished after only $n of $kills kills; raise STEPS" >&2
        failed=1
    fi
    if [ $same = 1 ]; then
        echo "$t: $n kills ($during_save while a checkpoint was being written), final weights identical to the uninterrupted run (${seconds%.*} s)"
    else
        echo "$t: $n kills: final weights DIFFER from the uninterrupted run ($work)" >&2
        failed=1
        KEEP=1
        trap - EXIT
    fi
done
exit $failed
