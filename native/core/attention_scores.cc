// Materialized attention for qk_mode >= 0, where the caller asked for the (B, Hq, Sq, Skv) score
// matrix (ONNX qk_matmul_output). The scores of one query row are computed in full, following
// the operator's order step by step, and the requested stage is copied out:
//
//   S = scale * q K^T                        -> mode 0
//   S = softcap * tanh(S / softcap)          -> mode 1
//   S = S + mask, -inf past the row limit    -> mode 2
//   P = softmax(S) (0 for a row with no finite score) -> mode 3
//   y = P V
//
// Memory is one row of Skv floats (and one widened key or value) per thread besides qk_out itself. The fast path for every
// other call is attention_flash.cc / attention_decode.cc.
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

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};

// Key or value j of kv head (b, hk) as float32: in place, or widened into `wide` (max(D, Dv)
// floats) from a half-precision cache.
const float* kv_row(const AttentionArgs& a, const KernelTable& kt, bool key, size_t b, size_t hk, size_t j,
                    float* wide) {
  const View4& view = key ? a.k : a.v;
  const size_t off = b * view.sb + hk * view.sh + j * view.st, n = key ? a.D : a.Dv;
  if (a.kv_dtype == DType::kF32) return view.data + off;
  (a.kv_dtype == DType::kF16 ? kt.cvt_f16_f32 : kt.cvt_bf16_f32)((key ? a.k16 : a.v16) + off, wide, n);
  return wide;
}

// s: Skv floats, then max(D, Dv) for a widened key or value.
void score_row(const AttentionArgs& a, const KernelTable& kt, size_t b, size_t h, size_t i, float* s) {
  const size_t G = a.Hq / a.Hkv, hk = h / G, Skv = a.Skv;
  float* out = a.qk_out + ((b * a.Hq + h) * a.Sq + i) * Skv;
  float* wide = s + Skv;
  const float* qr = a.q.data + b * a.q.sb + h * a.q.sh + i * a.q.st;
  for (size_t j = 0; j < Skv; ++j) s[j] = a.scale * kt.vec_dot(qr, kv_row(a, kt, true, b, hk, j, wide), a.D);
  if (a.qk_mode == 0) std::memcpy(out, s, Skv * sizeof(float));
  if (a.softcap > 0.f) kt.vec_softcap(s, 1.f, a.softcap, Skv);
  if (a.qk_mode == 1) std::memcpy(out, s, Skv * sizeof(float));

  const size_t lim = static_cast<size_t>(row_limit(a, b, i));
  const size_t mask_off = b * a.mask_sb + h * a.mask_sh + i * a.mask_sq;
  if (a.mask_f32 != nullptr) {
    for (size_t j = 0; j < lim; ++j) s[j] += a.mask_f32[mask_off + j];
  } else if (a.mask_u8 != nullptr) {
    for (size_t j = 0; j < lim; ++j) s[j] = a.mask_u8[mask_off + j] ? s[j] : -INFINITY;
  }
  std::fill(s + lim, s + Skv, -INFINITY);
  if (a.qk_mode == 2) std::memcpy(out, s, Skv * sizeof(float));

  const float mx = kt.vec_max(s, Skv);
  float* yr = a.y + b * a.y_sb + h * a.y_sh + i * a.y_st;
  std::fill(yr, yr + a.Dv, 0.f);
  if (mx == -INFINITY) {
    // No finite score: ONNX gives zero probabilities and y = 0 (exp(-inf - -inf) would be NaN).
    if (a.qk_mode == 3) std::fill(out, out + Skv, 0.f);
    return;
  }
  const float sum = kt.vec_expsum(s, mx, Skv);
  kt.vec_scale(s, 1.f / sum, Skv);
  if (a.qk_mode == 3) std::memcpy(out, s, Skv * sizeof(float));
  for (size_t j = 0; j < lim; ++j) {
    if (s[j] != 0.f) kt.vec_axpy(yr, kv_row(a, kt, false, b, hk, j, wide), s[j], a.Dv);
  }
}

}  // namespace

Status attention_scores(const AttentionArgs& a) {
  const KernelTable& kt = kernels();
  const size_t rows = a.B * a.Hq * a.Sq;
  const double flops = 2.0 * rows * static_cast<double>(a.Skv) * (a.D + a.Dv);
  const int threads = flops < 1e6 ? 1 : static_cast<int>(std::min<size_t>(num_threads(), rows));
  std::atomic<bool> oom{false};

  parallel(threads, [&](Team& team) {
    const size_t floats = a.Skv + std::max(a.D, a.Dv);
    std::unique_ptr<float, FreeDeleter> row(static_cast<float*>(std::malloc(std::max<size_t>(floats, 1) * sizeof(float))));
    if (!row) oom.store(true, std::memory_order_relaxed);
    team.for_dynamic(rows, 16, [&](size_t idx) {
      if (!row) return;
      const size_t i = idx % a.Sq, h = (idx / a.Sq) % a.Hq, b = idx / (a.Sq * a.Hq);
      score_row(a, kt, b, h, i, row.get());
    });
  });
  return oom.load() ? Status::kOutOfMemory : Status::kOk;
}

}  // namespace detail
}  // namespace attn
