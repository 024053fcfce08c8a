#!/usr/bin/env bash
# npm run test:isa [-- --simde]: the kernel sets tested without Node. Builds native/test/isa_test
# (the core library with every kernel set of the target, CMakeLists.txt's own source lists) and
# runs it once per set, which selects that set through the core's dispatch:
#   scalar, avx2   natively;
#   avx512         natively when the CPU has AVX-512F/BW/DQ/VL, else compiled against SIMDe
#                  (Debian libsimde-dev) with native/test/simde_avx512.h; --simde (or
#                  ATTN_ISA_SIMDE=1) forces that route on an AVX-512 machine;
#   neon           cross-compiled with aarch64-linux-gnu-g++ (scripts/build-arm64.sh, which also
#                  cross-builds the addon) and run under qemu-aarch64 -L /usr/aarch64-linux-gnu.
# stdout is one line per set, `isa NAME (HOW): N passed, M failed`; failure details and build
# logs go to stderr. Exits non-zero on any failure. ISA_TEST_VERBOSE=1 prints per-check times.
set -euo pipefail
cd "$(dirname "$0")/.."

simde="${ATTN_ISA_SIMDE:-0}"
for arg in "$@"; do
  case "$arg" in
    --simde) simde=1 ;;
    *) echo "usage: npm run test:isa [-- --simde]" >&2; exit 2 ;;
  esac
done

root="${ISA_BUILD_DIR:-build-isa}"
jobs="${ISA_JOBS:-2}"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
failed=0

# Builds with the log shown only on failure.
quiet() {
  local log
  log="$(mktemp)"
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}

# One run of the test; a missing binary or a crash still gives the set its line.
run_set() {
  local name="$1" how="$2"
  shift 2
  if ! "$@" "$name" "--how=$how"; then failed=1; fi
}

cpu_has() {  # all the given /proc/cpuinfo flags
  local flags
  flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  for f in "$@"; do [[ "$flags" == *" $f "* ]] || return 1; done
}

host="$(uname -m)"
if [ "$host" = x86_64 ]; then
  if ! cpu_has avx512f avx512bw avx512dq avx512vl; then simde=1; fi
  if [ "$simde" = 1 ] && [ ! -e /usr/include/simde/x86/avx512.h ]; then
    echo "test:isa: SIMDe headers not found; install Debian's libsimde-dev" >&2
    exit 1
  fi
  # Without AVX2 on the host the SIMDe build falls back to its plain-C paths.
  simde_flags="-mavx2;-mfma"
  cpu_has avx2 fma || simde_flags=""
  x86="$root/x86-$([ "$simde" = 1 ] && echo simde || echo native)"
  if ! quiet cmake -S . -B "$x86" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DATTN_BUILD_ADDON=OFF \
        -DATTN_BUILD_ISA_TEST=ON -DATTN_OPT=-O2 "-DATTN_AVX512_SIMDE=$([ "$simde" = 1 ] && echo ON || echo OFF)" \
        "-DATTN_SIMDE_FLAGS=$simde_flags" ||
     ! quiet cmake --build "$x86" --target isa_test --parallel "$jobs"; then
    echo "test:isa: the x86-64 build failed" >&2
    for s in scalar avx2 avx512; do echo "isa $s (native): 0 passed, 1 failed"; done
    failed=1
  else
    run_set scalar native "$x86/isa_test"
    run_set avx2 native "$x86/isa_test"
    run_set avx512 "$([ "$simde" = 1 ] && echo simde || echo native)" "$x86/isa_test"
  fi

  if ! command -v qemu-aarch64 >/dev/null; then
    echo "test:isa: qemu-aarch64 not found; install Debian's qemu-user" >&2
    echo "isa neon (qemu-aarch64): 0 passed, 1 failed"
    failed=1
  elif ! ARM64_BUILD_DIR="${ARM64_BUILD_DIR:-build-arm64}" bash scripts/build-arm64.sh >&2; then
    echo "isa neon (qemu-aarch64): 0 passed, 1 failed"
    failed=1
  else
    run_set neon qemu-aarch64 qemu-aarch64 -L /usr/aarch64-linux-gnu "${ARM64_BUILD_DIR:-build-arm64}/isa_test"
  fi
elif [ "$host" = aarch64 ] || [ "$host" = arm64 ]; then
  native="$root/native"
  quiet cmake -S . -B "$native" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DATTN_BUILD_ADDON=OFF \
    -DATTN_BUILD_ISA_TEST=ON -DATTN_OPT=-O2
  quiet cmake --build "$native" --target isa_test --parallel "$jobs"
  echo "test:isa: $host host: the x86 sets are not tested here" >&2
  run_set scalar native "$native/isa_test"
  run_set neon native "$native/isa_test"
else
  echo "test:isa: no kernel sets to test on $host" >&2
  exit 1
fi
exit "$failed"
