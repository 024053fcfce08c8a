// A whole multi-head attention layer (projections, attention, output projection) in one call,
// so a decode step crosses the N-API boundary once instead of once per op.
//
//   x is (B, S, d_in), y is (B, S, d_out)
//   q = x Wq + bq : (B, S, Hq*D)       k = x Wk + bk, v = x Wv + bv : (B, S, Hkv*D)
//   with a rotary embedding (rotary_dim > 0): q, k <- rope(q, k) at positions past + i (attn/llama_ops.h)
//   ctx = attention(q, past keys ++ k, past values ++ v) : (B, S, Hq*D)
//   y = ctx Wo + bo, or y = ctx when there is no Wo (then d_out = Hq*D)
//
// Head h owns columns [h*D, (h+1)*D) of the projected axis, and query head h reads kv head
// h / (Hq/Hkv), so the projections stay plain row-major matmuls and attention reads q, k, v and
// writes ctx in place through 3-D [B, S, H*D] strides. With a cache, the new keys and values are
// written after its `length` positions and read back from the cache; query i sits at absolute
// position length + i. The cache's length only advances once the whole step has succeeded.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "attn/kv_cache.h"
#include "attn/status.h"

namespace attn {

struct MhaShape {
  size_t d_in = 0, d_out = 0, hq = 0, hkv = 0, head_dim = 0;
  bool causal = true;
  float scale = 1.f;
  size_t rotary_dim = 0;  // 0: no rotary embedding; else even, <= head_dim (MhaWeights::inv_freq)
};

// W is (in, out) row-major (y = x W + b). wo == nullptr: no output projection; bo is then unused.
struct MhaWeights {
  const float *wq = nullptr, *wk = nullptr, *wv = nullptr, *wo = nullptr;
  const float *bq = nullptr, *bk = nullptr, *bv = nullptr, *bo = nullptr;
  const float* inv_freq = nullptr;  // rotary_dim / 2 rope inverse frequencies when rotary_dim > 0
};

// Optional attention mask over (B, Hq, S, len), len <= total keys; see AttentionArgs.
struct MhaMask {
  const float* f32 = nullptr;
  const uint8_t* u8 = nullptr;
  size_t sb = 0, sh = 0, sq = 0, len = 0;
};

struct MhaCall {
  const float* x = nullptr;
  float* y = nullptr;
  size_t B = 0, S = 0;
  KVCache* cache = nullptr;  // null: attend to the S new tokens only
  MhaMask mask;
  // B values or null. Row b's rotary positions are past + i - position_offsets[b] (clamped at 0):
  // a left-padded row counts positions from its first real token, wherever that sits in the cache.
  const int32_t* position_offsets = nullptr;
};

// Buffers reused from call to call (and layer to layer); they only grow. One per thread.
struct MhaScratch {
  std::vector<float> q, k, v, ctx;
  std::vector<int32_t> causal_offset;
  std::vector<int32_t> positions;
};

// Preconditions (checked by the binding): every pointer covers its extent for these sizes,
// hq % hkv == 0, rotary_dim even and <= head_dim (inv_freq set when > 0), and with a cache: its
// batch/heads/head_dim match and length + S <= max_len; position_offsets, when set, holds B values >= 0.
Status mha_forward(const MhaShape& shape, const MhaWeights& w, const MhaCall& call, MhaScratch& scratch);

}  // namespace attn
