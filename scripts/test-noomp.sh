#!/usr/bin/env bash
# npm run test:noomp: the build without OpenMP. Builds the addon with -DATTN_OPENMP=OFF (what a
# compiler without OpenMP, such as Apple's clang, gets: the parallel loops run on the
# std::thread pool of native/core/threads.cc), checks that it links no OpenMP runtime and reports
# threading 'threads', then runs the native-heavy test files against it.
#
# The addon is built into its own folder (NOOMP_BUILD_DIR, default build-noomp/), so build/
# stays untouched; the loader takes it from NODE_ATTENTION_ADDON.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${NOOMP_BUILD_DIR:-build-noomp}"
addon="$PWD/$dir/Release/node_attention.node"

npx cmake-js compile -O "$dir" --CDATTN_OPENMP=OFF --parallel "${NOOMP_JOBS:-2}"
npm run build:ts

if ldd "$addon" | grep -Ei 'libgomp|libomp|libiomp'; then
  echo "test:noomp: $addon links an OpenMP runtime" >&2
  exit 1
fi

export NODE_ATTENTION_ADDON="$addon"
# Refuse to report success unless the thread-pool build is the one the tests load.
node -e '
  const raw = require(process.env.NODE_ATTENTION_ADDON).info();
  const info = require("./dist/index.js").backendInfo();
  if (raw.threading !== "threads" || !info.nativeLoaded || info.binaryPath !== process.env.NODE_ATTENTION_ADDON) {
    console.error("test:noomp: the thread-pool build is not in use:", JSON.stringify({ raw, info }, null, 2));
    process.exit(1);
  }
  console.log(`test:noomp: ${info.binaryPath} (threading ${raw.threading}, simd ${raw.isa}, ${raw.threads} threads)`);
'

if [ $# -gt 0 ]; then
  npx vitest run "$@"
else
  npx vitest run test/attention-native.test.ts test/attention.test.ts test/matmul.test.ts test/linear.test.ts \
    test/kv-cache.test.ts test/mha.test.ts test/gpt.test.ts test/concurrency.test.ts test/determinism.test.ts \
    test/probe.test.ts
fi
