// Scaled dot-product attention with ONNX Attention (opset 23/24) semantics, on strided views.
//
//   q is (B, Hq, Sq, D), k is (B, Hkv, Skv, D), v is (B, Hkv, Skv, Dv), y is (B, Hq, Sq, Dv)
//   element (b, h, t, d) of a view lives at data[b*sb + h*sh + t*st + d] (d is contiguous), so
//   the same kernel reads ONNX 4-D [B,H,S,D] and 3-D [B,S,H*D] layouts and a KV cache in place.
//
//   score(i, j) = softcap(scale * q_i . k_j) + mask(b, h, i, j), -inf where
//     j >= mask_len (opset 24 short mask), j >= kv_valid[b] (nonpad_kv_seqlen),
//     causal and j > i + causal_offset[b]
//   y_i = softmax_j(score(i, .)) @ v, and 0 for a row with no finite score.
//
// Query head h reads kv head h / (Hq / Hkv). k/v hold every key the queries may see (past
// included); the caller concatenates past and new keys (ONNX "present") beforehand.
#pragma once
#include <cstddef>
#include <cstdint>

#include "attn/half.h"
#include "attn/status.h"

namespace attn {

struct View4 {
  const float* data = nullptr;
  size_t sb = 0, sh = 0, st = 0;
};

struct AttentionArgs {
  size_t B = 0, Hq = 0, Hkv = 0, Sq = 0, Skv = 0, D = 0, Dv = 0;
  View4 q, k, v;
  // 16-bit keys and values (a half-precision KV cache, attn/kv_cache.h): with kv_dtype kF16 or
  // kBF16 they are read from k16 / v16 through k's and v's strides, k.data and v.data unused. The
  // kernels widen each step of keys to float32 as it is used (exact), so only the storage rounds.
  DType kv_dtype = DType::kF32;
  const uint16_t* k16 = nullptr;
  const uint16_t* v16 = nullptr;
  float* y = nullptr;
  size_t y_sb = 0, y_sh = 0, y_st = 0;

  // Additive mask broadcast to (B, Hq, Sq, mask_len) through strides (0 broadcasts a dim).
  // At most one of mask_f32 (added to the score) and mask_u8 (0 -> -inf, nonzero -> 0) is set.
  const float* mask_f32 = nullptr;
  const uint8_t* mask_u8 = nullptr;
  size_t mask_sb = 0, mask_sh = 0, mask_sq = 0, mask_len = 0;

  const int32_t* kv_valid = nullptr;       // B entries in [0, Skv], or null
  bool causal = false;
  const int32_t* causal_offset = nullptr;  // B entries (may be negative), used when causal

  float scale = 1.f;
  float softcap = 0.f;  // 0: none

  // ONNX qk_matmul_output: -1 none, 0 scaled QK^T, 1 after softcap, 2 after mask, 3 softmax.
  // When set, qk_out is (B, Hq, Sq, Skv) contiguous and the score matrix is materialized.
  int qk_mode = -1;
  float* qk_out = nullptr;
};

Status attention(const AttentionArgs& args);

}  // namespace attn
