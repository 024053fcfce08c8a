#!/usr/bin/env bash
# npm pack's prepack step (and `npm run prebuild`): prebuildify makes the prebuilt binaries the
# package ships, prebuilds/linux-x64 and prebuilds/linux-arm64 (cross-compiled), through
# scripts/prebuild-cmake.sh. The loader (lib/native/load.ts) prefers them to a local build, so an
# install with scripts blocked (npm 11's default until they are approved) still loads native.
# prebuildify moves each binary out of build/Release; the local build is linked again at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(uname -s)" = Linux ] || { echo "prebuild: the recipes are for Linux hosts" >&2; exit 1; }
rm -rf prebuilds
npx prebuildify --napi --tag-libc --node-gyp scripts/prebuild-cmake.sh
if [ "$(uname -m)" = x86_64 ]; then
  if command -v aarch64-linux-gnu-g++ >/dev/null; then
    npx prebuildify --napi --tag-libc --arch arm64 --node-gyp scripts/prebuild-cmake.sh
  else
    echo "prebuild: aarch64-linux-gnu-g++ not found (Debian g++-aarch64-linux-gnu): no linux-arm64 prebuild" >&2
    exit 1
  fi
fi
find prebuilds -name '*.node' -exec file {} \;
if [ -f build/CMakeCache.txt ]; then npx cmake-js compile >/dev/null; fi
