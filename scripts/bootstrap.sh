#!/usr/bin/env bash
# One-time set-up on a fresh Debian machine with the Swift toolchain (run as root):
# installs OpenBLAS when pkg-config cannot find it, then obtains and verifies the default model.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! pkg-config --exists openblas 2>/dev/null; then
    echo "bootstrap: installing OpenBLAS (libopenblas-dev) and pkg-config via apt" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq libopenblas-dev pkg-config >/dev/null
fi
scripts/pull-default-model.sh >/dev/null
