#!/usr/bin/env sh
# prebuildify calls this in place of node-gyp ("rebuild" and its flags are ignored; it passes the
# target in PREBUILD_ARCH) and collects the .node file from build/Release. Prebuilt binaries run on
# machines we do not control, so they depend on nothing but libc: parallel loops on the
# std::thread pool instead of libgomp, and the C++ runtime linked statically. linux-arm64 is
# cross-compiled with Debian's aarch64 toolchain. Each target builds in its own folder, so the
# local build's configuration in build/ is left alone.
set -e
cd "$(dirname "$0")/.."
arch="${PREBUILD_ARCH:-$(node -p process.arch)}"
set -- --CDATTN_OPENMP=OFF --CDATTN_STATIC_RUNTIME=ON
case "$arch" in
  x64) ;;
  arm64) set -- "$@" --CDCMAKE_TOOLCHAIN_FILE="$PWD/scripts/aarch64-linux-gnu.cmake" ;;
  *) echo "prebuild: no recipe for $arch" >&2; exit 1 ;;
esac
node node_modules/cmake-js/bin/cmake-js compile -O "build-prebuild-$arch" "$@"
mkdir -p build/Release
cp "build-prebuild-$arch/Release/node_attention.node" build/Release/node_attention.node
