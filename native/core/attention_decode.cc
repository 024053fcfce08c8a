// Decode attention: a few query positions (Sq <= kDecodeMaxSq, e.g. one new token) against a long
// key range, usually a KV cache read in place through strides (no copies).
//
//   q is (B, Hq, Sq, D), k is (B, Hkv, Skv, D), v is (B, Hkv, Skv, Dv), y is (B, Hq, Sq, Dv)
//
// Every query row of a kv group (G heads x Sq positions) is one tile, so each key and value is
// read from memory once per step for all of them. When there are fewer (batch, kv head) groups
// than the threads can share evenly, the keys are split into chunks as well; each chunk runs the
// same online softmax (attention_flash.cc) and leaves a partial (m, l, O), and the partials merge
// by log-sum-exp:
//
//   M = max_s m_s,   w_s = exp(m_s - M),   y = (sum_s w_s O_s) / (sum_s w_s l_s)
//
// ref: https://pytorch.org/blog/flash-decoding/ (split-K decoding)
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "attention_internal.h"
#include "attn/threads.h"

namespace attn {
namespace detail {

namespace {

// Chunks shorter than this cost more to merge than they save.
constexpr size_t kMinSplitKeys = 256;
// Work items per thread to aim for, so uneven chunks still balance.
constexpr size_t kItemsPerThread = 4;

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};

}  // namespace

Status attention_decode(const AttentionArgs& a) {
  const KernelTable& kt = kernels();
  const size_t G = a.Hq / a.Hkv, rows = a.Sq * G;
  const size_t groups = a.B * a.Hkv;
  const size_t threads_max = static_cast<size_t>(num_threads());

  size_t nsplit = 1;
  if (groups < kItemsPerThread * threads_max) {
    const size_t want = (kItemsPerThread * threads_max + groups - 1) / groups;
    nsplit = std::max<size_t>(1, std::min(want, a.Skv / kMinSplitKeys));
  }
  size_t chunk = round_up((a.Skv + nsplit - 1) / nsplit, kKvTile);
  if (chunk == 0) chunk = 1;
  nsplit = std::max<size_t>(1, (a.Skv + chunk - 1) / chunk);
  const size_t items = groups * nsplit;

  // Per item of a split call: m (rows), l (rows), O (rows x Dv).
  const size_t part = rows * (a.Dv + 2);
  std::unique_ptr<float, FreeDeleter> partials;
  if (nsplit > 1) {
    partials.reset(static_cast<float*>(std::malloc(items * part * sizeof(float))));
    if (!partials) return Status::kOutOfMemory;
  }
  float* const parts = partials.get();

  const double bytes = static_cast<double>(groups) * a.Skv * (a.D + a.Dv) * sizeof(float);
  const int threads = bytes < (1 << 18) ? 1 : static_cast<int>(std::min(threads_max, items));
  std::atomic<bool> oom{false};

  parallel(threads, [&](Team& team) {
    TileScratch sc;
    const bool ok = sc.init(rows, a.D, a.Dv, a.kv_dtype);
    if (!ok) oom.store(true, std::memory_order_relaxed);
    team.for_dynamic(items, 1, [&](size_t item) {
      if (!ok) return;
      const size_t g = item / nsplit, split = item % nsplit;
      const Tile t = make_tile(a, g / a.Hkv, g % a.Hkv, 0, a.Sq);
      const size_t kv_end = static_cast<size_t>(tile_begin(a, t, sc));
      const size_t j_begin = split * chunk, j_end = std::min({a.Skv, j_begin + chunk, kv_end});
      if (j_begin < j_end) tile_pass(a, kt, t, sc, j_begin, j_end);
      if (nsplit == 1) {
        tile_finish(a, t, sc);
      } else {
        float* dst = parts + item * part;
        std::memcpy(dst, sc.m, rows * sizeof(float));
        std::memcpy(dst + rows, sc.l, rows * sizeof(float));
        std::memcpy(dst + 2 * rows, sc.o, rows * a.Dv * sizeof(float));
      }
    });

    if (nsplit > 1) {
      team.for_static(groups * rows, [&](size_t gr) {
        const size_t g = gr / rows, r = gr % rows;
        const float* first = parts + g * nsplit * part;
        float mx = -INFINITY;
        for (size_t s = 0; s < nsplit; ++s) mx = std::max(mx, first[s * part + r]);
        const Tile t = make_tile(a, g / a.Hkv, g % a.Hkv, 0, a.Sq);
        float* yr = y_row(a, t, r);
        std::fill(yr, yr + a.Dv, 0.f);
        // Every chunk saw only -inf scores: the row has no visible key and y stays 0.
        if (mx == -INFINITY) return;
        float total = 0.f;
        for (size_t s = 0; s < nsplit; ++s) {
          const float* p = first + s * part;
          const float w = std::exp(p[r] - mx);  // exp(-inf - finite) = 0 for an empty chunk
          if (w == 0.f) continue;
          total += w * p[rows + r];
          kt.vec_axpy(yr, p + 2 * rows + r * a.Dv, w, a.Dv);
        }
        kt.vec_scale(yr, 1.f / total, a.Dv);
      });
    }
  });
  return oom.load() ? Status::kOutOfMemory : Status::kOk;
}

}  // namespace detail
}  // namespace attn
