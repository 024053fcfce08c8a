// Drivers for the machine-limit probes (attn/probe.h): thread teams, calibration and timing
// around the per-ISA kernels. The bench divides its figures by these to print "% of limit".
// Each probe takes compute_lock() so it does not share the cores with a running kernel.
#include "attn/probe.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>

#include "attn/cpu_features.h"
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

FmaKernel best_fma_kernel() {
#if defined(ATTN_HAVE_X86_KERNELS)
  if (cpu_features().avx2_fma) return {f32_probe_fma__avx2, kProbeFmaFlopsPerIter__avx2, "avx2"};
#endif
  return {f32_probe_fma__scalar, kProbeFmaFlopsPerIter__scalar, "scalar"};
}

SumKernel best_sum_kernel() {
#if defined(ATTN_HAVE_X86_KERNELS)
  if (cpu_features().avx2_fma) return {f32_probe_sum__avx2};
#endif
  return {f32_probe_sum__scalar};
}

// Keeps results observable so no loop is removed as dead code.
volatile double g_sink = 0.0;

}  // namespace

PeakResult probe_fma_peak(int threads, double seconds) {
  std::lock_guard<std::mutex> lock(compute_lock());
  const FmaKernel k = best_fma_kernel();
  threads = std::max(threads, 1);

  // Calibrate on one thread until a run takes >= 20 ms, then size each trial to `seconds`.
  size_t iters = 1 << 16;
  double elapsed = 0.0;
  for (;;) {
    const double t0 = omp_get_wtime();
    g_sink = g_sink + k.fn(iters);
    elapsed = omp_get_wtime() - t0;
    if (elapsed >= 0.02 || iters >= (size_t{1} << 40)) break;
    iters *= 4;
  }
  iters = std::max<size_t>(1, static_cast<size_t>(static_cast<double>(iters) * seconds / elapsed));

  // The best trial is the peak: slower ones lost time to frequency ramp-up, thread start-up or a
  // neighbour on a shared machine, none of which is the hardware's limit.
  double best = 0.0;
  for (int trial = 0; trial < kTrials; ++trial) {
    double sum = 0.0;
    const double t0 = omp_get_wtime();
#pragma omp parallel num_threads(threads) reduction(+ : sum)
    sum += k.fn(iters);
    const double dt = omp_get_wtime() - t0;
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
#pragma omp parallel num_threads(threads)
  {
    const size_t nt = static_cast<size_t>(omp_get_num_threads());
    const size_t t = static_cast<size_t>(omp_get_thread_num());
    const size_t lo = n * t / nt, hi = n * (t + 1) / nt;
    std::fill(buf + lo, buf + hi, 1.0f);
  }

  double best = 0.0, checksum = 0.0;
  for (int trial = 0; trial < kTrials; ++trial) {
    double sum = 0.0;
    const double t0 = omp_get_wtime();
#pragma omp parallel num_threads(threads) reduction(+ : sum)
    {
      const size_t nt = static_cast<size_t>(omp_get_num_threads());
      const size_t t = static_cast<size_t>(omp_get_thread_num());
      const size_t lo = n * t / nt, hi = n * (t + 1) / nt;
      sum += k.fn(buf + lo, hi - lo);
    }
    const double dt = omp_get_wtime() - t0;
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
