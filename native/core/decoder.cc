// The decoder step (attn/decoder.h): the shared blocks of a decoder-only transformer in order,
// each a call into its driver (linear, attention, norms, rope, the MLP activations). No kernels of
// its own and no allocation once the state's buffers have grown to the step's size.
#include "attn/decoder.h"

#include <algorithm>
#include <new>

#include "attn/attention.h"
#include "attn/linear.h"
#include "attn/llama_ops.h"
#include "attn/model_ops.h"

namespace attn {

namespace {

template <typename T>
void grow(std::vector<T>& buffer, size_t n) {
  if (buffer.size() < n) buffer.resize(n);
}

// y (rows, lin.w.rows) = x (rows, lin.w.cols) lin.w^T + bias
Status apply(const DecoderLinear& lin, const float* x, size_t rows, float* y) {
  LinearArgs args;
  args.x = x;
  args.ldx = lin.w.cols;
  args.w = lin.w.data;
  args.w_dtype = lin.w.dtype;
  args.bias = lin.bias;
  args.y = y;
  args.ldy = lin.w.rows;
  args.m = rows;
  args.n = lin.w.rows;
  args.k = lin.w.cols;
  return linear(args);
}

Status normalize(const DecoderConfig& c, const DecoderNorm& norm, const float* x, float* y, size_t rows) {
  if (c.norm == NormKind::kRmsNorm) return rms_norm(x, norm.weight, y, rows, c.width, c.eps);
  layer_norm(x, norm.weight, norm.bias, y, rows, c.width, c.eps);
  return Status::kOk;
}

void add(float* x, const float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] += y[i];
}

}  // namespace

Status DecoderState::init(const DecoderConfig& config, size_t batch, size_t max_len, const int32_t* pad,
                          DType kv_dtype) {
  release();
  if (batch == 0 || max_len == 0) return Status::kBadShape;
  try {
    caches_ = std::vector<KVCache>(config.layers);
    pad_.assign(batch, 0);
    causal_offset_.assign(batch, 0);
  } catch (const std::bad_alloc&) {
    release();
    return Status::kOutOfMemory;
  }
  for (KVCache& cache : caches_) {
    const Status status = cache.init(batch, config.hkv, config.head_dim, max_len, kv_dtype);
    if (status != Status::kOk) {
      release();
      return status;
    }
  }
  batch_ = batch;
  max_len_ = max_len;
  padded_ = false;
  for (size_t b = 0; pad && b < batch; ++b) {
    pad_[b] = pad[b];
    padded_ = padded_ || pad[b] > 0;
  }
  return Status::kOk;
}

size_t DecoderState::bytes() const {
  size_t total = 0;
  for (const KVCache& cache : caches_) total += cache.bytes();
  return total;
}

Status DecoderState::truncate(size_t n) {
  for (KVCache& cache : caches_) {
    const Status status = cache.truncate(n);
    if (status != Status::kOk) return status;
  }
  return Status::kOk;
}

void DecoderState::release() {
  caches_.clear();
  batch_ = max_len_ = 0;
  for (auto* v : {&x_, &h_, &qkv_, &ctx_, &ff_, &act_, &last_}) std::vector<float>().swap(*v);
}

Status decoder_step(const DecoderConfig& c, const DecoderWeights& w, DecoderState& st, const DecoderStep& step) {
  const size_t B = st.batch_, S = step.S, rows = B * S, E = c.width, D = c.head_dim;
  const size_t q_width = c.hq * D, kv_width = c.hkv * D, qkv_width = q_width + 2 * kv_width;
  const size_t past = st.length(), total = past + S;
  const size_t ff_width = c.mlp == MlpKind::kSwiglu ? 2 * c.ffn : c.ffn;
  const size_t out_rows = step.all_positions ? rows : B;
  // The attention kernels bound keys from above (causality); left pads and a sliding window that
  // the step reaches past hide keys from below, as a [B, 1, S, total] boolean mask.
  const bool windowed = c.window > 0 && total > c.window;
  // A one-token step past the window reads only the window's keys: the cache views start `lo` keys
  // in, so long-context decode costs the window, not the context. (Attention probabilities are
  // reported over every key, so a step that asks for them keeps the mask.)
  const size_t lo = windowed && S == 1 && !step.probs ? total - c.window : 0;
  const bool masked = st.padded_ || (windowed && lo == 0);
  if (B == 0 || S == 0 || S > st.max_len_ - past || c.hkv == 0 || c.hq % c.hkv != 0 ||
      w.layers.size() != c.layers || st.caches_.size() != c.layers) {
    return Status::kBadShape;
  }
  try {
    grow(st.x_, rows * E);
    grow(st.h_, rows * E);
    grow(st.qkv_, rows * qkv_width);
    grow(st.ctx_, rows * q_width);
    grow(st.ff_, rows * ff_width);
    if (c.mlp == MlpKind::kSwiglu) grow(st.act_, rows * c.ffn);
    grow(st.last_, out_rows * E);
    grow(st.positions_, rows);
    if (masked) grow(st.keep_, B * S * total);
  } catch (const std::bad_alloc&) {
    return Status::kOutOfMemory;
  }
  float *x = st.x_.data(), *h = st.h_.data(), *qkv = st.qkv_.data(), *ctx = st.ctx_.data(), *ff = st.ff_.data();

  // Row b counts positions from its first real token: past + i - pad[b], clamped at 0 for pads.
  for (size_t b = 0; b < B; ++b) {
    for (size_t i = 0; i < S; ++i) {
      const int64_t p = static_cast<int64_t>(past + i) - st.pad_[b];
      st.positions_[b * S + i] = static_cast<int32_t>(p > 0 ? p : 0);
    }
    st.causal_offset_[b] = static_cast<int32_t>(past - lo);
  }
  for (size_t r = 0; r < rows; ++r) {
    embed_row(w.tokens.data, w.tokens.dtype, static_cast<size_t>(step.tokens[r]), E, x + r * E, false);
    if (w.positions.data) {
      embed_row(w.positions.data, w.positions.dtype, static_cast<size_t>(st.positions_[r]), E, x + r * E, true);
    }
  }
  // Query i of row b (position past + i) sees keys j >= pad[b] with j > past + i - window.
  if (masked) {
    for (size_t b = 0; b < B; ++b) {
      const size_t pad = std::min(static_cast<size_t>(st.pad_[b]), total);
      for (size_t i = 0; i < S; ++i) {
        uint8_t* row = st.keep_.data() + (b * S + i) * total;
        const size_t lo = windowed && past + i + 1 > c.window ? std::max(pad, past + i + 1 - c.window) : pad;
        std::fill(row, row + std::min(lo, total), uint8_t{0});
        if (lo < total) std::fill(row + lo, row + total, uint8_t{1});
      }
    }
  }

  AttentionArgs att;
  att.B = B;
  att.Hq = c.hq;
  att.Hkv = c.hkv;
  att.Sq = S;
  att.Skv = total - lo;
  att.D = att.Dv = D;
  att.q.data = qkv;
  att.q.sb = S * qkv_width;
  att.q.sh = D;
  att.q.st = qkv_width;
  att.y = ctx;
  att.y_sb = S * q_width;
  att.y_sh = D;
  att.y_st = q_width;
  if (masked) {
    att.mask_u8 = st.keep_.data() + lo;
    att.mask_sb = S * total;
    att.mask_sq = total;
    att.mask_len = total - lo;
  }
  att.causal = true;
  att.causal_offset = st.causal_offset_.data();
  att.scale = c.scale;
  View4 k_new = att.q, v_new = att.q;
  k_new.data = qkv + q_width;
  v_new.data = qkv + q_width + kv_width;

  RopeArgs rope_args;
  rope_args.B = B;
  rope_args.S = S;
  rope_args.D = D;
  rope_args.rotary_dim = c.rotary_dim;
  rope_args.positions = st.positions_.data();
  rope_args.inv_freq = w.inv_freq;
  rope_args.row_stride = qkv_width;

  Status status = Status::kOk;
  for (size_t l = 0; l < c.layers && status == Status::kOk; ++l) {
    const DecoderLayer& layer = w.layers[l];
    KVCache& cache = st.caches_[l];
    status = normalize(c, layer.norm1, x, h, rows);
    if (status == Status::kOk) status = apply(layer.qkv, h, rows, qkv);
    if (status == Status::kOk && c.rotary_dim > 0) {
      // Before k is cached: the cache holds rotated keys, so a step rotates only its own q and k.
      rope_args.H = c.hq;
      rope_args.x = rope_args.y = qkv;
      status = rope(rope_args);
      rope_args.H = c.hkv;
      rope_args.x = rope_args.y = qkv + q_width;
      if (status == Status::kOk) status = rope(rope_args);
    }
    // Written beyond the cache's length, so the valid positions stay intact if a later stage fails.
    if (status == Status::kOk) status = cache.write(past, k_new, v_new, S);
    if (status != Status::kOk) break;
    cache.attend(att, lo);
    att.qk_mode = step.probs && l == step.probs_layer ? 3 : -1;
    att.qk_out = att.qk_mode == 3 ? step.probs : nullptr;
    status = attention(att);
    if (status == Status::kOk) status = apply(layer.o, ctx, rows, h);
    if (status != Status::kOk) break;
    add(x, h, rows * E);
    status = normalize(c, layer.norm2, x, h, rows);
    if (status == Status::kOk) status = apply(layer.up, h, rows, ff);
    if (status != Status::kOk) break;
    const float* hidden = ff;
    if (c.mlp == MlpKind::kSwiglu) {
      // Row r of ff is [gate | up]: silu(gate) * up, row by row.
      for (size_t r = 0; r < rows && status == Status::kOk; ++r) {
        status = swiglu(ff + r * ff_width, ff + r * ff_width + c.ffn, st.act_.data() + r * c.ffn, c.ffn);
      }
      hidden = st.act_.data();
    } else {
      gelu_tanh(ff, rows * c.ffn);
    }
    if (status == Status::kOk) status = apply(layer.down, hidden, rows, h);
    if (status == Status::kOk) add(x, h, rows * E);
  }
  if (status != Status::kOk) return status;

  // Each row's last token only, unless every position's logits are asked for (S == 1: x is that).
  const float* final_rows = x;
  if (!step.all_positions && S > 1) {
    for (size_t b = 0; b < B; ++b) std::copy_n(x + ((b + 1) * S - 1) * E, E, st.last_.data() + b * E);
    final_rows = st.last_.data();
  }
  status = normalize(c, w.final_norm, final_rows, h, out_rows);
  DecoderLinear head;
  head.w = w.head;
  if (status == Status::kOk) status = apply(head, h, out_rows, step.logits);
  for (size_t l = 0; l < c.layers && status == Status::kOk; ++l) status = st.caches_[l].set_length(total);
  return status;
}

}  // namespace attn
