#!/usr/bin/env bash
# npm run build:arm64: cross-builds the addon for linux-arm64 with Debian's aarch64 toolchain
# (g++-aarch64-linux-gnu), so a NEON build error is caught here and not on a user's arm64 machine.
# Node-API headers come from the node-api-headers package and node-addon-api from node_modules
# (cmake-js passes both); nothing is downloaded. The same build makes the Node-free kernel test
# (isa_test) that scripts/test-isa.sh runs under qemu-aarch64, so the core is compiled once.
#
# Output in ARM64_BUILD_DIR (default build-arm64/): Release/node_attention.node and isa_test.
# -O2: this build is only compiled, linked and emulated, never timed.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${ARM64_BUILD_DIR:-build-arm64}"
if ! command -v aarch64-linux-gnu-g++ >/dev/null; then
  echo "build:arm64: aarch64-linux-gnu-g++ not found; install Debian's g++-aarch64-linux-gnu" >&2
  exit 1
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! npx cmake-js compile -O "$dir" --CDCMAKE_TOOLCHAIN_FILE="$PWD/scripts/aarch64-linux-gnu.cmake" \
    --CDATTN_BUILD_ISA_TEST=ON --CDATTN_OPT=-O2 --parallel "${ARM64_JOBS:-2}" >"$log" 2>&1; then
  cat "$log" >&2
  echo "build:arm64: the linux-arm64 cross-build failed" >&2
  exit 1
fi

addon="$dir/Release/node_attention.node"
desc="$(file -b "$addon")"
case "$desc" in
  *aarch64*) echo "build:arm64: $addon: $desc" ;;
  *) echo "build:arm64: $addon is not an aarch64 binary: $desc" >&2; exit 1 ;;
esac
