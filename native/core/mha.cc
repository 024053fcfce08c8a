// Multi-head attention layer driver: three projection matmuls, one attention call that reads the
// projections (and the KV cache) in place through strides, one output matmul. No math of its own.
#include "attn/mha.h"

#include <new>

#include "attn/attention.h"
#include "attn/llama_ops.h"
#include "attn/matmul.h"

namespace attn {

namespace {

// out (rows, n) = in (rows, k) @ w (k, n) + bias
Status project(const float* in, size_t rows, size_t k, const float* w, const float* bias, size_t n,
               float* out) {
  MatmulArgs args;
  args.a = in;
  args.b = w;
  args.bias = bias;
  args.c = out;
  args.m = rows;
  args.k = k;
  args.n = n;
  return matmul(args);
}

// A (B, S, H*D) row-major activation seen as (B, H, S, D).
View4 heads_view(const float* data, size_t S, size_t H, size_t D) {
  View4 v;
  v.data = data;
  v.sb = S * H * D;
  v.sh = D;
  v.st = H * D;
  return v;
}

template <typename T>
void grow(std::vector<T>& buffer, size_t n) {
  if (buffer.size() < n) buffer.resize(n);
}

}  // namespace

Status mha_forward(const MhaShape& shape, const MhaWeights& w, const MhaCall& call, MhaScratch& scratch) {
  const size_t B = call.B, S = call.S, D = shape.head_dim, Hq = shape.hq, Hkv = shape.hkv;
  const size_t rows = B * S, q_width = Hq * D, kv_width = Hkv * D;
  KVCache* cache = call.cache;
  const size_t past = cache ? cache->length() : 0;
  if (Hkv == 0 || Hq % Hkv != 0) return Status::kBadShape;
  if (shape.rotary_dim > 0 && (w.inv_freq == nullptr || shape.rotary_dim % 2 != 0 || shape.rotary_dim > D)) {
    return Status::kBadShape;
  }
  if (cache && (cache->batch() != B || cache->heads() != Hkv || cache->head_dim() != D ||
                S > cache->max_len() - past)) {
    return Status::kBadShape;
  }
  if (rows == 0) return Status::kOk;

  try {
    grow(scratch.q, rows * q_width);
    grow(scratch.k, rows * kv_width);
    grow(scratch.v, rows * kv_width);
    if (w.wo) grow(scratch.ctx, rows * q_width);
    grow(scratch.causal_offset, B);
    if (shape.rotary_dim > 0) grow(scratch.positions, call.position_offsets ? rows : S);
  } catch (const std::bad_alloc&) {
    return Status::kOutOfMemory;
  }

  Status status = project(call.x, rows, shape.d_in, w.wq, w.bq, q_width, scratch.q.data());
  if (status == Status::kOk) status = project(call.x, rows, shape.d_in, w.wk, w.bk, kv_width, scratch.k.data());
  if (status == Status::kOk) status = project(call.x, rows, shape.d_in, w.wv, w.bv, kv_width, scratch.v.data());
  if (status != Status::kOk) return status;
  if (shape.rotary_dim > 0) {
    // In place, before k is cached: the cache holds rotated keys, so a decode step rotates only
    // its own query and key. The rope driver is the op's (same float32 angle recipe).
    // Per-row offsets give each row its own positions; without them the batch shares one row.
    const int32_t* offsets = call.position_offsets;
    for (size_t b = 0; b < (offsets ? B : 1); ++b) {
      for (size_t i = 0; i < S; ++i) {
        const int64_t p = static_cast<int64_t>(past + i) - (offsets ? offsets[b] : 0);
        scratch.positions[b * S + i] = static_cast<int32_t>(p > 0 ? p : 0);
      }
    }
    RopeArgs r;
    r.B = B;
    r.S = S;
    r.D = D;
    r.rotary_dim = shape.rotary_dim;
    r.positions = scratch.positions.data();
    r.shared_positions = offsets == nullptr;
    r.inv_freq = w.inv_freq;
    r.H = Hq;
    r.x = r.y = scratch.q.data();
    status = rope(r);
    r.H = Hkv;
    r.x = r.y = scratch.k.data();
    if (status == Status::kOk) status = rope(r);
    if (status != Status::kOk) return status;
  }

  const View4 k_new = heads_view(scratch.k.data(), S, Hkv, D);
  const View4 v_new = heads_view(scratch.v.data(), S, Hkv, D);
  AttentionArgs att;
  att.B = B;
  att.Hq = Hq;
  att.Hkv = Hkv;
  att.Sq = S;
  att.Skv = past + S;
  att.D = att.Dv = D;
  att.q = heads_view(scratch.q.data(), S, Hq, D);
  if (cache) {
    // Written beyond the cache's length, so the valid positions stay intact if a later stage fails.
    status = cache->write(past, k_new, v_new, S);
    if (status != Status::kOk) return status;
    cache->attend(att, 0);
  } else {
    att.k = k_new;
    att.v = v_new;
  }
  float* ctx = w.wo ? scratch.ctx.data() : call.y;
  att.y = ctx;
  att.y_sb = S * q_width;
  att.y_sh = D;
  att.y_st = q_width;
  att.mask_f32 = call.mask.f32;
  att.mask_u8 = call.mask.u8;
  att.mask_sb = call.mask.sb;
  att.mask_sh = call.mask.sh;
  att.mask_sq = call.mask.sq;
  att.mask_len = call.mask.len;
  att.causal = shape.causal;
  if (shape.causal) {
    // Query i of this call is token past + i, so it sees keys j <= i + past.
    for (size_t b = 0; b < B; ++b) scratch.causal_offset[b] = static_cast<int32_t>(past);
    att.causal_offset = scratch.causal_offset.data();
  }
  att.scale = shape.scale;
  status = attention(att);
  if (status == Status::kOk && w.wo) status = project(ctx, rows, q_width, w.wo, w.bo, shape.d_out, call.y);
  if (status == Status::kOk && cache) status = cache->set_length(past + S);
  return status;
}

}  // namespace attn
