// GPT-2's row ops for the decoder step (attn/decoder.h): LayerNorm, the tanh GELU, and embedding
// lookup of 16-bit or float32 tables. Each is O(rows * width), small next to the matrix products
// around it, and computed in double as the JS backend's lib/js/ops.ts computes them, so the two
// backends agree to float rounding.
#pragma once
#include <cstddef>
#include <cstdint>

#include "attn/half.h"

namespace attn {

// y = (x - mean) / sqrt(var + eps) * gamma + beta per row (biased variance, two passes).
void layer_norm(const float* x, const float* gamma, const float* beta, float* y, size_t rows, size_t width,
                double eps);

// x = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), in place.
void gelu_tanh(float* x, size_t n);

// Row `row` of a [*, width] table of `dtype` as float32: dst = table[row] (accumulate: dst +=).
void embed_row(const void* table, DType dtype, size_t row, size_t width, float* dst, bool accumulate);

}  // namespace attn
