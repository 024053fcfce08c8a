#!/usr/bin/env bash
# npm run test:asan: the whole vitest suite (raw-binding fuzz included) against an addon built
# with AddressSanitizer + UndefinedBehaviorSanitizer, so an out-of-bounds access or UB anywhere
# in native/ fails CI instead of corrupting a user's process.
#
# The addon is built into its own folder (ASAN_BUILD_DIR, default build-asan/) so the normal
# build/ stays untouched. Node itself is not instrumented, so the ASan runtime must be the first
# library loaded: LD_PRELOAD the compiler's libasan (libubsan is an ordinary dependency of the
# .node file and loads after it).
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir="${ASAN_BUILD_DIR:-build-asan}"
addon="$PWD/$build_dir/Release/node_attention.node"

# GCC leaves float-cast-overflow out of -fsanitize=undefined; the binding converts JS doubles to
# size_t, so ask for it explicitly. It goes in the Release flags because cmake-js overwrites
# CMAKE_CXX_FLAGS; replacing them also drops -DNDEBUG, so assert() preconditions are checked here.
npx cmake-js compile -O "$build_dir" --CDATTN_SANITIZE=ON \
  --CDCMAKE_CXX_FLAGS_RELEASE=-fsanitize=float-cast-overflow --parallel "${ASAN_JOBS:-2}"
npm run build:ts

libasan="$(g++ -print-file-name=libasan.so)"
if [ ! -e "$libasan" ]; then
  echo "test:asan: libasan.so not found (g++ -print-file-name=libasan.so gave '$libasan')" >&2
  exit 1
fi

export NODE_ATTENTION_ADDON="$addon"
export LD_PRELOAD="$libasan${LD_PRELOAD:+ $LD_PRELOAD}"
# detect_leaks=0: Node does not free everything at exit, so LeakSanitizer would report V8, not us
# (test/memory.test.ts covers leaks by measuring). allocator_may_return_null=1: a huge request
# throws std::bad_alloc (a JS Error) as with the system allocator, instead of an ASan abort.
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
# More fuzz cases than the default suite run: this is where out-of-bounds accesses are visible.
export NODE_ATTENTION_FUZZ_RUNS="${NODE_ATTENTION_FUZZ_RUNS:-2000}"

# Refuse to report success unless the instrumented addon is the one the tests load.
node -e '
  const info = require("./dist/index.js").backendInfo();
  const maps = require("fs").readFileSync("/proc/self/maps", "utf8");
  if (!info.nativeLoaded || info.binaryPath !== process.env.NODE_ATTENTION_ADDON || !maps.includes("libasan")) {
    console.error("test:asan: the sanitizer build is not in use:", JSON.stringify(info, null, 2));
    process.exit(1);
  }
  console.log(`test:asan: ${info.binaryPath} (simd ${info.simd}, ${info.threads} threads)`);
'

# forks, not threads: a sanitizer report aborts the process, and with forks only the child that
# ran the offending file dies, so vitest names that file and the report is printed beside it.
# Instrumented code runs 2-3x slower, so the per-test timeout is raised instead of dropping the
# long-context tests (the 2048x2048 attentionAsync test needs ~6 s here on 2 busy cores).
npx vitest run --pool=forks --testTimeout=60000 "$@"

# ASan cannot see the AVX2 kernels' masked loads and stores (compiler builtins), so the files that
# drive the native kernels run again with the fully instrumented scalar kernels selected.
if [ $# -eq 0 ]; then
  npx vitest run -c scripts/vitest-scalar.config.mjs --pool=forks --testTimeout=60000
fi
