// Drivers for the Llama-family row ops (attn/llama_ops.h). Each splits its rows (or, for the
// elementwise ops, fixed blocks of elements) across the thread team; below 256 KiB of output one
// thread is faster than waking the team, as in present.cc, and a decode step's calls are that
// small. Kernels only through kernels().
#include "attn/llama_ops.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <new>
#include <vector>

#include "attn/kernels.h"
#include "attn/threads.h"

namespace attn {
namespace {

constexpr size_t kSerialBytes = size_t{1} << 18;
// Elements per block of the elementwise ops: 64 KiB of output, a few microseconds of work.
constexpr size_t kBlock = 16384;

int threads_for(size_t out_floats, size_t units) {
  if (out_floats * sizeof(float) < kSerialBytes) return 1;
  return static_cast<int>(std::min<size_t>(static_cast<size_t>(num_threads()), units));
}

// fn(begin, end) over [0, n) in kBlock pieces on the team.
template <typename F>
void blocks(size_t n, F&& fn) {
  const size_t count = (n + kBlock - 1) / kBlock;
  std::lock_guard<std::mutex> lock(compute_lock());
  parallel(threads_for(n, count), [&](Team& team) {
    team.for_dynamic(count, 1, [&](size_t b) { fn(b * kBlock, std::min(n, (b + 1) * kBlock)); });
  });
}

}  // namespace

Status rms_norm(const float* x, const float* w, float* y, size_t rows, size_t width, double eps) {
  if (width == 0) return Status::kBadShape;
  const KernelTable& kt = kernels();
  std::lock_guard<std::mutex> lock(compute_lock());
  parallel(threads_for(rows * width, rows), [&](Team& team) {
    // Rows of a few KiB each: chunks of 4 keep the dynamic schedule's bookkeeping small.
    team.for_dynamic(rows, 4, [&](size_t r) { kt.rmsnorm_row(x + r * width, w, y + r * width, width, eps); });
  });
  return Status::kOk;
}

Status silu(const float* x, float* y, size_t n) {
  const KernelTable& kt = kernels();
  blocks(n, [&](size_t begin, size_t end) { kt.silu(x + begin, y + begin, end - begin); });
  return Status::kOk;
}

Status swiglu(const float* gate, const float* up, float* y, size_t n) {
  const KernelTable& kt = kernels();
  blocks(n, [&](size_t begin, size_t end) { kt.swiglu(gate + begin, up + begin, y + begin, end - begin); });
  return Status::kOk;
}

Status rope(const RopeArgs& a) {
  const size_t half = a.rotary_dim / 2, rows = a.B * a.S, row = a.H * a.D;
  const size_t stride = a.row_stride ? a.row_stride : row;
  if (a.rotary_dim % 2 != 0 || a.rotary_dim > a.D || stride < row) return Status::kBadShape;
  const KernelTable& kt = kernels();
  const int threads = threads_for(rows * row, rows);
  // One token's cos and sin per thread, shared by its H heads (allocated here: a parallel region
  // must not throw, and kernels never allocate). Kept by the calling thread, so a decode step,
  // which rotates q and k in every layer, allocates nothing once the first step has sized it.
  static thread_local std::vector<float> tables;
  try {
    if (tables.size() < static_cast<size_t>(threads) * 2 * half) tables.resize(static_cast<size_t>(threads) * 2 * half);
  } catch (const std::bad_alloc&) {
    return Status::kOutOfMemory;
  }
  // The caller's tables, taken before the region: inside it `tables` names each thread's own.
  float* const base = tables.data();
  std::lock_guard<std::mutex> lock(compute_lock());
  parallel(threads, [&](Team& team) {
    float* cos_t = base + static_cast<size_t>(team.rank()) * 2 * half;
    float* sin_t = cos_t + half;
    team.for_dynamic(rows, 4, [&](size_t r) {
      const int32_t pos = a.positions[a.shared_positions ? r % a.S : r];
      // As transformers does: positions.float() @ inv_freq in float32 (a K = 1 product: one
      // rounding), then cos and sin of that float angle in float32. The float rounding of the
      // angle is what long positions depend on (at p = 1e5 one float ulp is 0.008 rad), so it is
      // reproduced exactly; cos/sin are taken in double and rounded once (within 1 ulp of torch's).
      const float p = static_cast<float>(pos);
      for (size_t i = 0; i < half; ++i) {
        const float angle = p * a.inv_freq[i];
        cos_t[i] = static_cast<float>(std::cos(static_cast<double>(angle)));
        sin_t[i] = static_cast<float>(std::sin(static_cast<double>(angle)));
      }
      kt.rope_row(a.x + r * stride, a.y + r * stride, cos_t, sin_t, a.H, a.D, half);
    });
  });
  return Status::kOk;
}

}  // namespace attn
