// 16-bit floats as stored in checkpoints: IEEE binary16 (F16) and bfloat16 (BF16), held as raw
// uint16_t bits. Scalar conversions for the scalar kernel set, the embedding lookup and tests; the
// SIMD sets convert in registers (F16C / AVX-512 vcvtph2ps, NEON vcvt_f32_f16, BF16 by a shift).
#pragma once
#include <cstdint>
#include <cstring>

namespace attn {

enum class DType : int { kF32 = 0, kF16 = 1, kBF16 = 2 };

inline float bits_to_f32(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

inline uint32_t f32_to_bits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}

// Exact: every binary16 value (subnormals, infinities, NaN payloads) is a float32 value.
inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000u | (mant << 13));
  if (exp != 0) return bits_to_f32(sign | ((exp + 112) << 23) | (mant << 13));
  // Subnormal (or zero): mant * 2^-24, exact in float32.
  const float magnitude = static_cast<float>(mant) * 5.9604644775390625e-8f;
  return bits_to_f32(sign | f32_to_bits(magnitude));
}

// Exact: bfloat16 is the top half of a float32.
inline float bf16_to_f32(uint16_t b) { return bits_to_f32(static_cast<uint32_t>(b) << 16); }

}  // namespace attn
