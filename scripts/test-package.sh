#!/usr/bin/env bash
# npm run test:package: what a user of the published package gets. Packs the tarball (prepack
# builds the linux-x64 and linux-arm64 prebuilds), installs it into an empty project with install
# scripts blocked (npm 11's default until a user approves them), and checks that native loads from
# the shipped prebuild, that the README's first example runs there, and that the tarball carries
# what it should and nothing from tests, benchmarks or build trees.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
work="$(mktemp -d)"
# The prebuilds made for the tarball would shadow the local build for every later test: drop them.
trap 'rm -rf "$work" "$root/prebuilds"' EXIT

tarball="$(npm pack --pack-destination "$work" --silent | tail -1)"
tgz="$work/$tarball"
size=$(stat -c %s "$tgz")
echo "test:package: $tarball, $((size / 1024)) KiB"
[ "$size" -lt $((8 * 1024 * 1024)) ] || { echo "test:package: the tarball is over 8 MiB" >&2; exit 1; }

listing="$(tar -tzf "$tgz")"
for want in package/LICENSE package/README.md package/ARCHITECTURE.md package/dist/index.js package/dist/index.mjs \
    package/examples/demo.mjs package/scripts/install.js package/CMakeLists.txt; do
  grep -qx "$want" <<<"$listing" || { echo "test:package: $want is missing from the tarball" >&2; exit 1; }
done
for arch in x64 arm64; do
  grep -q "^package/prebuilds/linux-$arch/.*\.node$" <<<"$listing" ||
    { echo "test:package: no linux-$arch prebuild in the tarball" >&2; exit 1; }
done
if grep -E '^package/(test|bench|build[^/]*|native/test)/' <<<"$listing"; then
  echo "test:package: the tarball ships test, bench or build files (above)" >&2; exit 1
fi

app="$work/app"
mkdir "$app"
cd "$app"
npm init -y >/dev/null
npm install --ignore-scripts --no-audit --no-fund "$tgz" >/dev/null
node -e "
  const na = require('node-attention');
  const info = na.backendInfo();
  if (info.backend !== 'native' || !/prebuilds/.test(info.binaryPath)) {
    console.error('test:package: expected the native backend from a prebuild, got', info);
    process.exit(1);
  }
  console.log('test:package: installed with --ignore-scripts:', info.backend, info.simd, info.binaryPath.replace(process.cwd(), '.'));
"
node --input-type=module -e "
  import { attention, backendInfo } from 'node-attention';
  const q = { data: new Float32Array(1 * 2 * 4 * 8).fill(0.5), dims: [1, 2, 4, 8] };
  const { y } = attention(q, q, q, { isCausal: true });
  if (y.dims.join() !== '1,2,4,8') process.exit(1);
  console.log('test:package: ESM import works,', backendInfo().simd);
"
cd "$root"
