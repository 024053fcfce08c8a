// The Llama-family row ops: RMSNorm, rotary position embedding, SiLU and SwiGLU. Plain drivers
// over the kernel table (attn/kernels.h: rmsnorm_row, rope_row, silu, swiglu), threaded over rows
// when the call is large enough to pay for waking the team. Preconditions (the binding checks
// them): every pointer covers the sizes given; outputs alias their inputs exactly or not at all.
#pragma once
#include <cstddef>
#include <cstdint>

#include "attn/status.h"

namespace attn {

// y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w for rows r < rows of width >= 1 floats.
Status rms_norm(const float* x, const float* w, float* y, size_t rows, size_t width, double eps);

// y = silu(x), y = silu(gate) * up over n floats.
Status silu(const float* x, float* y, size_t n);
Status swiglu(const float* gate, const float* up, float* y, size_t n);

// Rotary embedding of x [B, S, H, D] (a projection's layout) into y of the same shape, Hugging
// Face's rotate_half convention on the first rotary_dim dims of each head (the rest copied).
// The angle of pair i at position p is (float)p * inv_freq[i] rounded to float, and cos/sin of
// that float angle are rounded to float, as transformers' LlamaRotaryEmbedding computes them.
struct RopeArgs {
  size_t B = 0, S = 0, H = 0, D = 0;
  size_t rotary_dim = 0;            // even, <= D
  const float* x = nullptr;
  const int32_t* positions = nullptr;  // B * S (or S when shared_positions), each >= 0
  bool shared_positions = false;
  const float* inv_freq = nullptr;  // rotary_dim / 2
  float* y = nullptr;
  // Floats from one token's row to the next in x and y; 0 means H * D (contiguous). A fused
  // projection's q or k part is a [B, S, H, D] view with the fused row's width as its stride.
  size_t row_stride = 0;
};
Status rope(const RopeArgs& args);

}  // namespace attn
