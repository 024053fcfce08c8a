// 16-bit floats as stored in checkpoints and half-precision KV caches: IEEE binary16 (F16) and
// bfloat16 (BF16), held as raw uint16_t bits. Scalar conversions for the scalar kernel set, the
// embedding lookup, cache writes and tests; the
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

// Nearest binary16, ties to even (what F16C's vcvtps2ph gives with _MM_FROUND_TO_NEAREST_INT):
// overflow gives infinity, a NaN stays a quiet NaN with the top of its payload. The same bits as
// the JS backend's f32ToF16Bits (lib/gpt/safetensors.ts), so both backends cache the same values.
inline uint16_t f32_to_f16(float f) {
  const uint32_t x = f32_to_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000u, a = x & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to infinity
  if (a < 0x38800000u) {
    // Below 2^-14 the result is subnormal: adding 0.5 lines the binary16 ulp (2^-24) up with the
    // float32 ulp of 0.5, so the float adder does the round-to-nearest-even for us.
    const uint32_t r = f32_to_bits(bits_to_f32(a) + 0.5f) - 0x3f000000u;
    return static_cast<uint16_t>(sign | r);
  }
  // Rebias the exponent (127 -> 15) and round the 13 dropped bits; a carry out of the mantissa
  // moves to the exponent, as it should.
  const uint32_t r = (a + 0xfffu + ((a >> 13) & 1u) - 0x38000000u) >> 13;
  return static_cast<uint16_t>(sign | r);
}

// Nearest bfloat16, ties to even; a NaN stays a quiet NaN (rounding could carry its payload into
// the exponent).
inline uint16_t f32_to_bf16(float f) {
  const uint32_t x = f32_to_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

}  // namespace attn
