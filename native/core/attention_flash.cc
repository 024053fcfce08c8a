// Flash attention on the CPU: a tiled online softmax that never materializes the Sq x Skv score
// matrix. Memory is O(rows x (D + Dv + kKvTile)) per thread, whatever the sequence length.
// ref: https://arxiv.org/abs/2205.14135 (FlashAttention), https://arxiv.org/abs/2112.05682
//
//   q is (B, Hq, Sq, D), k is (B, Hkv, Skv, D), v is (B, Hkv, Skv, Dv), y is (B, Hq, Sq, Dv),
//   all strided views read in place (see attn/attention.h).
//
// One tile = a block of query positions for every query head of one kv group (the group's heads
// are rows of the same tile, so each K/V step is loaded once for all of them and stays in cache).
// For each step of kKvTile keys:
//
//   S^T = K_step Q^T                          (attn_qk_panel, or attn_qk_rows for few rows)
//   S   = softcap(scale * S) + mask           (only when there is a softcap or a mask)
//   m_new <- max(m, rowmax(S))               (attn_softmax, with -inf past each row's limit)
//   P   <- exp(S - m_new)                    (attn_softmax)
//   l   <- exp(m - m_new) * l + rowsum(P)    (attn_softmax)
//   O   <- O * exp(m - m_new) + P V_step     (attn_pv: the rescale is fused into loading O)
//   y   <- O / l                              at the end (0 when l = 0: nothing visible)
//
// Row limits fold causality, kv_valid and the short mask into one "keys j < lim" bound per row,
// so a step past every row's limit is never computed (causal tiles above the diagonal are
// skipped), and inside a step each Q panel / PV block only runs up to its own rows' limit.
// This file also holds the prefill driver: a thread team over batch x kv head x query blocks.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "attention_internal.h"
#include "attn/threads.h"

namespace attn {
namespace detail {

int64_t row_limit(const AttentionArgs& a, size_t b, size_t i) {
  int64_t lim = static_cast<int64_t>(a.Skv);
  if (a.mask_f32 != nullptr || a.mask_u8 != nullptr) lim = std::min(lim, static_cast<int64_t>(a.mask_len));
  if (a.kv_valid != nullptr) lim = std::min(lim, static_cast<int64_t>(a.kv_valid[b]));
  if (a.causal) {
    const int64_t off = a.causal_offset != nullptr ? a.causal_offset[b] : 0;
    lim = std::min(lim, static_cast<int64_t>(i) + off + 1);
  }
  return std::max<int64_t>(lim, 0);
}

Tile make_tile(const AttentionArgs& a, size_t b, size_t hk, size_t q0, size_t npos) {
  Tile t;
  t.b = b;
  t.hk = hk;
  t.q0 = q0;
  t.npos = npos;
  t.rows = npos * (a.Hq / a.Hkv);
  t.lds = round_up(t.rows, kAttnPanel);
  t.packed = t.rows > kMaxUnpackedRows;
  return t;
}

TileScratch::~TileScratch() { std::free(block_); }

bool TileScratch::init(size_t max_rows, size_t D, size_t Dv, DType kv_dtype) {
  const size_t lds = round_up(max_rows, kAttnPanel);
  // Every region starts on a 64-byte boundary.
  const size_t fq = round_up(lds * D, 16), fs = round_up(kKvTile * lds, 16), fo = round_up(max_rows * Dv, 16);
  const size_t fkv = kv_dtype == DType::kF32 ? 0 : kKvTile * D;
  const size_t bytes = (fq + fs + fo + fkv + 3 * lds) * sizeof(float) +
                       lds * (sizeof(int32_t) + sizeof(int64_t) + sizeof(void*));
  block_ = std::aligned_alloc(64, round_up(bytes, 64));
  if (block_ == nullptr) return false;
  float* f = static_cast<float*>(block_);
  q = f;
  s = q + fq;
  o = s + fs;
  kv = fkv > 0 ? o + fo : nullptr;
  m = o + fo + fkv;
  l = m + lds;
  alpha = l + lds;
  lim = reinterpret_cast<int64_t*>(alpha + lds);  // lds is a multiple of 16: 8-byte aligned
  mask_rows = reinterpret_cast<const void**>(lim + lds);
  vis = reinterpret_cast<int32_t*>(mask_rows + lds);
  return true;
}

float* y_row(const AttentionArgs& a, const Tile& t, size_t r) {
  const size_t G = a.Hq / a.Hkv;
  return a.y + t.b * a.y_sb + (t.hk * G + r % G) * a.y_sh + (t.q0 + r / G) * a.y_st;
}

int64_t tile_begin(const AttentionArgs& a, const Tile& t, TileScratch& sc) {
  const size_t G = a.Hq / a.Hkv, D = a.D;
  int64_t max_lim = 0;
  for (size_t r = 0; r < t.rows; ++r) {
    const size_t h = t.hk * G + r % G, i = t.q0 + r / G;
    const float* qr = a.q.data + t.b * a.q.sb + h * a.q.sh + i * a.q.st;
    if (t.packed) {
      float* panel = sc.q + (r / kAttnPanel) * kAttnPanel * D + r % kAttnPanel;
      for (size_t d = 0; d < D; ++d) panel[d * kAttnPanel] = qr[d];
    } else {
      std::memcpy(sc.q + r * D, qr, D * sizeof(float));
    }
    sc.lim[r] = row_limit(a, t.b, i);
    max_lim = std::max(max_lim, sc.lim[r]);
    const size_t mask_off = t.b * a.mask_sb + h * a.mask_sh + i * a.mask_sq;
    if (a.mask_f32 != nullptr) sc.mask_rows[r] = a.mask_f32 + mask_off;
    if (a.mask_u8 != nullptr) sc.mask_rows[r] = a.mask_u8 + mask_off;
  }
  // Padding rows of the last panel: zeros keep their (masked, discarded) scores finite.
  if (t.packed) {
    for (size_t r = t.rows; r < t.lds; ++r) {
      float* panel = sc.q + (r / kAttnPanel) * kAttnPanel * D + r % kAttnPanel;
      for (size_t d = 0; d < D; ++d) panel[d * kAttnPanel] = 0.f;
    }
  }
  for (size_t r = 0; r < t.lds; ++r) {
    if (r >= t.rows) sc.lim[r] = 0;
    sc.m[r] = -INFINITY;
    sc.l[r] = 0.f;
  }
  std::memset(sc.o, 0, t.rows * a.Dv * sizeof(float));
  return max_lim;
}

namespace {

// S <- pre * S + mask on each row's visible keys (pre = 1 after the softcap already scaled S).
void apply_mask(const AttentionArgs& a, const Tile& t, TileScratch& sc, size_t j0, float pre) {
  for (size_t r = 0; r < t.rows; ++r) {
    float* col = sc.s + r;
    const size_t n = static_cast<size_t>(sc.vis[r]);
    if (a.mask_f32 != nullptr) {
      const float* mr = static_cast<const float*>(sc.mask_rows[r]) + j0;
      for (size_t j = 0; j < n; ++j) col[j * t.lds] = col[j * t.lds] * pre + mr[j];
    } else {
      const uint8_t* mr = static_cast<const uint8_t*>(sc.mask_rows[r]) + j0;
      for (size_t j = 0; j < n; ++j) col[j * t.lds] = mr[j] ? col[j * t.lds] * pre : -INFINITY;
    }
  }
}

// n rows of 16-bit elements, row j at src + j * st, widened into n * d contiguous floats: a prefill
// step of a half-precision cache's keys is read from memory once, as 16-bit, and the float32 panel
// kernel runs on the widened copy while it is in L1/L2.
const float* widen_rows(const KernelTable& kt, DType dtype, const uint16_t* src, size_t st, size_t n, size_t d,
                        float* dst) {
  const auto cvt = dtype == DType::kF16 ? kt.cvt_f16_f32 : kt.cvt_bf16_f32;
  if (st == d) {
    cvt(src, dst, n * d);
  } else {
    for (size_t j = 0; j < n; ++j) cvt(src + j * st, dst + j * d, d);
  }
  return dst;
}

}  // namespace

void tile_pass(const AttentionArgs& a, const KernelTable& kt, const Tile& t, TileScratch& sc, size_t j_begin,
               size_t j_end) {
  const size_t D = a.D, Dv = a.Dv;
  const bool has_mask = a.mask_f32 != nullptr || a.mask_u8 != nullptr;
  const size_t nr8 = round_up(t.rows, 8);
  for (size_t j0 = j_begin; j0 < j_end; j0 += kKvTile) {
    const int64_t nk = static_cast<int64_t>(std::min(kKvTile, j_end - j0));
    int32_t nk_max = 0;
    for (size_t r = 0; r < t.lds; ++r) {
      const int64_t v = std::min(std::max<int64_t>(sc.lim[r] - static_cast<int64_t>(j0), 0), nk);
      sc.vis[r] = static_cast<int32_t>(v);
      nk_max = std::max(nk_max, sc.vis[r]);
    }
    if (nk_max == 0) continue;
    const size_t k_off = t.b * a.k.sb + t.hk * a.k.sh + j0 * a.k.st;
    const size_t v_off = t.b * a.v.sb + t.hk * a.v.sh + j0 * a.v.st;
    const bool f32 = a.kv_dtype == DType::kF32, f16 = a.kv_dtype == DType::kF16;
    if (t.packed) {
      // Each key serves many rows here: widen the step once and run the float32 panel kernel.
      const float* kj = f32 ? a.k.data + k_off
                            : widen_rows(kt, a.kv_dtype, a.k16 + k_off, a.k.st, static_cast<size_t>(nk_max), D, sc.kv);
      const size_t k_st = f32 ? a.k.st : D;
      for (size_t p = 0; p < t.lds; p += kAttnPanel) {
        const int32_t n = *std::max_element(sc.vis + p, sc.vis + p + kAttnPanel);
        if (n > 0) kt.attn_qk_panel(kj, k_st, n, sc.q + p * D, D, sc.s + p, t.lds);
      }
    } else if (f32) {
      kt.attn_qk_rows(a.k.data + k_off, a.k.st, nk_max, sc.q, D, t.rows, D, sc.s, t.lds);
    } else {
      (f16 ? kt.attn_qk_rows_f16 : kt.attn_qk_rows_bf16)(a.k16 + k_off, a.k.st, nk_max, sc.q, D, t.rows, D, sc.s, t.lds);
    }
    float scale = a.scale;
    if (a.softcap > 0.f) {
      kt.vec_softcap(sc.s, a.scale, a.softcap, static_cast<size_t>(nk_max) * t.lds);
      scale = 1.f;
    }
    if (has_mask) {
      apply_mask(a, t, sc, j0, scale);
      scale = 1.f;
    }
    kt.attn_softmax(sc.s, t.lds, nk_max, nr8, sc.vis, scale, sc.m, sc.l, sc.alpha);
    if (f32) {
      kt.attn_pv(sc.s, t.lds, a.v.data + v_off, a.v.st, sc.vis, sc.alpha, sc.o, Dv, t.rows, Dv);
    } else {
      (f16 ? kt.attn_pv_f16 : kt.attn_pv_bf16)(sc.s, t.lds, a.v16 + v_off, a.v.st, sc.vis, sc.alpha, sc.o, Dv, t.rows, Dv);
    }
  }
}

void tile_finish(const AttentionArgs& a, const Tile& t, const TileScratch& sc) {
  for (size_t r = 0; r < t.rows; ++r) {
    // l = 0 only when the row saw no finite score: ONNX gives 0 there, not 0/0.
    const float inv = sc.l[r] > 0.f ? 1.f / sc.l[r] : 0.f;
    const float* orow = sc.o + r * a.Dv;
    float* yr = y_row(a, t, r);
    for (size_t c = 0; c < a.Dv; ++c) yr[c] = orow[c] * inv;
  }
}

// Query rows per prefill tile, whatever the group size: a multiple of the 16-row Q panel and of
// the AVX2 kernels' 6-row PV block. Bigger tiles reuse each K/V step for more rows.
constexpr size_t kTileRows = 96;

Status attention_flash(const AttentionArgs& a) {
  const KernelTable& kt = kernels();
  const size_t G = a.Hq / a.Hkv;
  const size_t bq = std::max<size_t>(1, std::min(a.Sq, kTileRows / G));
  const size_t nq = (a.Sq + bq - 1) / bq;
  const size_t items = a.B * a.Hkv * nq;
  // Causal tiles get more keys the later they start: hand out the big ones first.
  const bool reverse = a.causal;
  const double flops = 4.0 * a.B * a.Hq * a.Sq * static_cast<double>(a.Skv) * (a.D + a.Dv) / 2;
  const int threads = flops < 1e6 ? 1 : static_cast<int>(std::min<size_t>(num_threads(), items));
  std::atomic<bool> oom{false};

  parallel(threads, [&](Team& team) {
    TileScratch sc;
    const bool ok = sc.init(bq * G, a.D, a.Dv, a.kv_dtype);
    if (!ok) oom.store(true, std::memory_order_relaxed);
    team.for_dynamic(items, 1, [&](size_t item) {
      if (!ok) return;
      const size_t qt = reverse ? nq - 1 - item % nq : item % nq;
      const size_t bh = item / nq;
      const size_t q0 = qt * bq;
      const Tile t = make_tile(a, bh / a.Hkv, bh % a.Hkv, q0, std::min(bq, a.Sq - q0));
      const int64_t kv_end = tile_begin(a, t, sc);
      tile_pass(a, kt, t, sc, 0, static_cast<size_t>(kv_end));
      tile_finish(a, t, sc);
    });
  });
  return oom.load() ? Status::kOutOfMemory : Status::kOk;
}

}  // namespace detail
}  // namespace attn
