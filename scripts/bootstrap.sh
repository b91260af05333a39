#!/usr/bin/env bash
# One-time set-up on a fresh Debian machine with the Swift toolchain (run as root):
# installs OpenBLAS when pkg-config cannot find it and Open MPI when mpirun is missing, then obtains and verifies
# the default model.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! pkg-config --exists openblas 2>/dev/null; then
    echo "bootstrap: installing OpenBLAS (libopenblas-dev) and pkg-config via apt" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq libopenblas-dev pkg-config >/dev/null
fi
# Open MPI for data-parallel runs (`mpirun -np N rlhf …`) and their tests; optional: without it (or without root)
# everything else works and the MPI tests are skipped with that reason.
if ! command -v mpirun >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing Open MPI (openmpi-bin, libopenmpi-dev) via apt" >&2
    export DEBIAN_FRONTEND=noninteractive
    (apt-get update -qq && apt-get install -y -qq openmpi-bin libopenmpi-dev >/dev/null) \
        || echo "bootstrap: Open MPI could not be installed; data-parallel runs and their tests are unavailable" >&2
fi
# iproute2 (`ip netns`) lets the MPI tests put two ranks on two virtual hosts talking TCP (scripts/mpi-two-hosts.sh).
if ! command -v ip >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing iproute2 via apt (two-host MPI test)" >&2
    (export DEBIAN_FRONTEND=noninteractive && apt-get update -qq && apt-get install -y -qq iproute2 >/dev/null) \
        || echo "bootstrap: iproute2 could not be installed; the two-host MPI test is skipped" >&2
fi
scripts/pull-default-model.sh >/dev/null
