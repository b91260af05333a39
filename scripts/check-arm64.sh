#!/usr/bin/env bash
# arm64 keeps building: the C kernels compile for aarch64 (their x86 code sits behind __x86_64__), checked
# with the toolchain's clang against Debian's aarch64 C library headers (installed when missing, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
sysroot=/usr/aarch64-linux-gnu
if [ ! -f "$sysroot/include/stdlib.h" ]; then
    echo "check-arm64: installing the aarch64 C headers (libc6-dev-arm64-cross) via apt" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq libc6-dev-arm64-cross >/dev/null
fi
status=0
for f in Sources/_CKernels/*.c; do
    clang --target=aarch64-linux-gnu --sysroot="$sysroot" -isystem "$sysroot/include" -ISources/_CKernels/include \
        -std=c11 -O2 -Wall -Werror -fsyntax-only "$f" || status=1
done
[ "$status" -eq 0 ] && echo "check-arm64: Sources/_CKernels/*.c compile for aarch64-linux-gnu"
exit "$status"
