// Drivers for the machine-limit probes (attn/probe.h): thread teams, calibration and timing
// around the per-ISA kernels. The bench divides its figures by these to print "% of limit".
// Each probe takes compute_lock() so it does not share the cores with a running kernel.
#include "attn/probe.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <vector>

#include "attn/kernels.h"
#include "attn/threads.h"

namespace attn {

namespace {

constexpr int kTrials = 5;

struct FmaKernel {
  float (*fn)(size_t);
  size_t flops_per_iter;
  const char* name;
};

struct SumKernel {
  float (*fn)(const float*, size_t);
};

// The probes of the kernel set in use (attn/kernels.h), so a peak measured after select_isa()
// is the peak of the set the kernels being compared run on.
FmaKernel best_fma_kernel() {
  const KernelTable& kt = kernels();
  return {kt.probe_fma, kt.probe_fma_flops_per_iter, kt.isa};
}

SumKernel best_sum_kernel() { return {kernels().probe_sum}; }

// Keeps results observable so no loop is removed as dead code.
volatile double g_sink = 0.0;

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

PeakResult probe_fma_peak(int threads, double seconds) {
  std::lock_guard<std::mutex> lock(compute_lock());
  const FmaKernel k = best_fma_kernel();
  threads = std::max(threads, 1);

  // Calibrate on one thread until a run takes >= 20 ms, then size each trial to `seconds`.
  size_t iters = 1 << 16;
  double elapsed = 0.0;
  for (;;) {
    const double t0 = now_seconds();
    g_sink = g_sink + k.fn(iters);
    elapsed = now_seconds() - t0;
    if (elapsed >= 0.02 || iters >= (size_t{1} << 40)) break;
    iters *= 4;
  }
  iters = std::max<size_t>(1, static_cast<size_t>(static_cast<double>(iters) * seconds / elapsed));

  // The best trial is the peak: slower ones lost time to frequency ramp-up, thread start-up or a
  // neighbour on a shared machine, none of which is the hardware's limit.
  double best = 0.0;
  std::vector<double> part(static_cast<size_t>(threads));
  for (int trial = 0; trial < kTrials; ++trial) {
    const double t0 = now_seconds();
    parallel(threads, [&](Team& team) { part[static_cast<size_t>(team.rank())] = k.fn(iters); });
    const double dt = now_seconds() - t0;
    double sum = 0.0;
    for (double p : part) sum += p;
    g_sink = g_sink + sum;
    const double flops = static_cast<double>(k.flops_per_iter) * static_cast<double>(iters) * threads;
    best = std::max(best, flops / dt * 1e-9);
  }
  return {best, k.name};
}

Status probe_read_bandwidth(int threads, size_t bytes, BandwidthResult* out) {
  std::lock_guard<std::mutex> lock(compute_lock());
  const SumKernel k = best_sum_kernel();
  threads = std::max(threads, 1);
  const size_t n = bytes / sizeof(float);
  const size_t alloc = ((n * sizeof(float) + 63) / 64) * 64;
  float* buf = static_cast<float*>(std::aligned_alloc(64, alloc));
  if (buf == nullptr) return Status::kOutOfMemory;

  // Each thread writes (first touch) exactly the range it will later read, so on a NUMA machine
  // its pages sit on its own node, as a kernel's per-thread share of a KV cache would.
  parallel(threads, [&](Team& team) {
    const size_t nt = static_cast<size_t>(team.size()), t = static_cast<size_t>(team.rank());
    const size_t lo = n * t / nt, hi = n * (t + 1) / nt;
    std::fill(buf + lo, buf + hi, 1.0f);
  });

  double best = 0.0, checksum = 0.0;
  std::vector<double> part(static_cast<size_t>(threads));
  for (int trial = 0; trial < kTrials; ++trial) {
    const double t0 = now_seconds();
    parallel(threads, [&](Team& team) {
      const size_t nt = static_cast<size_t>(team.size()), t = static_cast<size_t>(team.rank());
      const size_t lo = n * t / nt, hi = n * (t + 1) / nt;
      part[t] = k.fn(buf + lo, hi - lo);
    });
    const double dt = now_seconds() - t0;
    double sum = 0.0;
    for (double p : part) sum += p;
    checksum = sum;
    best = std::max(best, static_cast<double>(n * sizeof(float)) / dt * 1e-9);
  }
  std::free(buf);
  g_sink = g_sink + checksum;
  out->gbps = best;
  out->checksum = checksum;
  return Status::kOk;
}

}  // namespace attn
