// Test builds only (-DATTN_AVX512_SIMDE=ON, scripts/test-isa.sh): force-included (-include) into
// the avx512 kernel files so they compile against SIMDe, which implements the _mm512_* intrinsics
// on AVX2 or in plain C, and the avx512 code paths are tested on a CPU without AVX-512.
//
// Debian's SIMDe (0.7.4) lacks a few intrinsics the kernels (or later ones) use; without an alias
// the name falls through to GCC's own, which refuses to compile without -mavx512f. They are
// defined below from SIMDe's types, element by element: masked loads read only the selected
// lanes (a lane past the end of a buffer may sit on an unreadable page, which isa_test checks)
// and masked stores write only those.
#pragma once

// GCC's declarations first, so that SIMDe's alias macros (defined next) do not rewrite them.
#include <immintrin.h>

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

#include <cstdint>
#include <cstring>

namespace attn_simde {

inline simde__m512 load16(const float* f) {
  simde__m512 v;
  std::memcpy(&v, f, 64);
  return v;
}
inline void store16(float* f, simde__m512 v) { std::memcpy(f, &v, 64); }

inline simde__m512 mask_loadu_ps(simde__m512 src, uint16_t k, const void* p) {
  float f[16];
  store16(f, src);
  for (int i = 0; i < 16; ++i) {
    if (k >> i & 1) std::memcpy(&f[i], static_cast<const float*>(p) + i, 4);
  }
  return load16(f);
}

inline simde__m512 maskz_loadu_ps(uint16_t k, const void* p) { return mask_loadu_ps(simde_mm512_setzero_ps(), k, p); }

inline void mask_storeu_ps(void* p, uint16_t k, simde__m512 v) {
  float f[16];
  store16(f, v);
  for (int i = 0; i < 16; ++i) {
    if (k >> i & 1) std::memcpy(static_cast<float*>(p) + i, &f[i], 4);
  }
}

inline simde__m512i maskz_loadu_epi32(uint16_t k, const void* p) {
  int32_t x[16] = {};
  for (int i = 0; i < 16; ++i) {
    if (k >> i & 1) std::memcpy(&x[i], static_cast<const int32_t*>(p) + i, 4);
  }
  simde__m512i v;
  std::memcpy(&v, x, 64);
  return v;
}

inline simde__m512i mask_loadu_epi32(simde__m512i src, uint16_t k, const void* p) {
  int32_t x[16];
  std::memcpy(x, &src, 64);
  for (int i = 0; i < 16; ++i) {
    if (k >> i & 1) std::memcpy(&x[i], static_cast<const int32_t*>(p) + i, 4);
  }
  simde__m512i v;
  std::memcpy(&v, x, 64);
  return v;
}

inline void mask_storeu_epi32(void* p, uint16_t k, simde__m512i v) {
  int32_t x[16];
  std::memcpy(x, &v, 64);
  for (int i = 0; i < 16; ++i) {
    if (k >> i & 1) std::memcpy(static_cast<int32_t*>(p) + i, &x[i], 4);
  }
}

inline uint16_t mask_cmplt_epi32_mask(uint16_t k, simde__m512i a, simde__m512i b) {
  int32_t x[16], y[16];
  std::memcpy(x, &a, 64);
  std::memcpy(y, &b, 64);
  uint16_t r = 0;
  for (int i = 0; i < 16; ++i) r |= static_cast<uint16_t>((x[i] < y[i]) << i);
  return r & k;
}

// 8 floats from half `imm` (0 or 1) of v.
inline simde__m256 extractf32x8_ps(simde__m512 v, int imm) {
  float f[16];
  store16(f, v);
  simde__m256 r;
  std::memcpy(&r, f + 8 * (imm & 1), 32);
  return r;
}

// 128-bit lanes: two picked from a (imm bits 0-3), two from b (bits 4-7).
inline simde__m512 shuffle_f32x4(simde__m512 a, simde__m512 b, int imm) {
  float fa[16], fb[16], r[16];
  store16(fa, a);
  store16(fb, b);
  for (int lane = 0; lane < 4; ++lane) {
    const int pick = (imm >> (2 * lane)) & 3;
    std::memcpy(r + 4 * lane, (lane < 2 ? fa : fb) + 4 * pick, 16);
  }
  return load16(r);
}

inline float reduce_add_ps(simde__m512 v) {
  float f[16];
  store16(f, v);
  // The pairwise tree GCC's version uses (halves, then quarters, ...).
  for (int w = 8; w >= 1; w /= 2) {
    for (int i = 0; i < w; ++i) f[i] += f[i + w];
  }
  return f[0];
}

inline float reduce_max_ps(simde__m512 v) {
  float f[16];
  store16(f, v);
  for (int w = 8; w >= 1; w /= 2) {
    for (int i = 0; i < w; ++i) f[i] = f[i] > f[i + w] ? f[i] : f[i + w];
  }
  return f[0];
}

// 16 IEEE halves -> floats (F16C semantics: exact, subnormals and inf/NaN kept).
inline simde__m512 cvtph_ps(simde__m256i h) {
  uint16_t x[16];
  std::memcpy(x, &h, 32);
  float f[16];
  for (int i = 0; i < 16; ++i) {
    const uint32_t sign = static_cast<uint32_t>(x[i] & 0x8000) << 16;
    const uint32_t exp = x[i] >> 10 & 0x1F, man = x[i] & 0x3FF;
    uint32_t bits;
    if (exp == 0x1F) {
      bits = sign | 0x7F800000u | man << 13;
    } else if (exp != 0) {
      bits = sign | (exp + 112) << 23 | man << 13;
    } else if (man == 0) {
      bits = sign;
    } else {
      // Subnormal half: normalize into a float.
      int e = 113;
      uint32_t m = man;
      while (!(m & 0x400)) {
        m <<= 1;
        --e;
      }
      bits = sign | static_cast<uint32_t>(e) << 23 | (m & 0x3FF) << 13;
    }
    std::memcpy(&f[i], &bits, 4);
  }
  return load16(f);
}

// 8 floats widened to 8 doubles (exact).
inline simde__m512d cvtps_pd(simde__m256 v) {
  float f[8];
  std::memcpy(f, &v, 32);
  double d[8];
  for (int i = 0; i < 8; ++i) d[i] = f[i];
  simde__m512d r;
  std::memcpy(&r, d, 64);
  return r;
}

// 16 16-bit lanes, only those selected read (a half-precision cache's keys and values).
inline simde__m256i maskz_loadu_epi16(uint16_t k, const void* p) {
  uint16_t x[16] = {};
  for (int i = 0; i < 16; ++i) {
    if (k >> i & 1) std::memcpy(&x[i], static_cast<const uint16_t*>(p) + i, 2);
  }
  simde__m256i v;
  std::memcpy(&v, x, 32);
  return v;
}

// 16 unsigned 16-bit integers zero-extended to 32 bits (the bf16 weights of gemv_bf16).
inline simde__m512i cvtepu16_epi32(simde__m256i h) {
  uint16_t x[16];
  std::memcpy(x, &h, 32);
  uint32_t r[16];
  for (int i = 0; i < 16; ++i) r[i] = x[i];
  simde__m512i v;
  std::memcpy(&v, r, 64);
  return v;
}

}  // namespace attn_simde

#undef _mm512_mask_loadu_ps
#undef _mm512_maskz_loadu_ps
#undef _mm512_mask_storeu_ps
#undef _mm512_maskz_loadu_epi32
#undef _mm512_mask_loadu_epi32
#undef _mm512_mask_storeu_epi32
#undef _mm512_mask_cmplt_epi32_mask
#undef _mm512_extractf32x8_ps
#undef _mm512_shuffle_f32x4
#undef _mm512_reduce_add_ps
#undef _mm512_reduce_max_ps
#undef _mm512_cvtph_ps
#undef _mm512_cvtps_pd
#undef _mm512_cvtepu16_epi32
#undef _mm256_maskz_loadu_epi16
#define _mm512_mask_loadu_ps(src, k, p) attn_simde::mask_loadu_ps(src, k, p)
#define _mm512_maskz_loadu_ps(k, p) attn_simde::maskz_loadu_ps(k, p)
#define _mm512_mask_storeu_ps(p, k, v) attn_simde::mask_storeu_ps(p, k, v)
#define _mm512_maskz_loadu_epi32(k, p) attn_simde::maskz_loadu_epi32(k, p)
#define _mm512_mask_loadu_epi32(src, k, p) attn_simde::mask_loadu_epi32(src, k, p)
#define _mm512_mask_storeu_epi32(p, k, v) attn_simde::mask_storeu_epi32(p, k, v)
#define _mm512_mask_cmplt_epi32_mask(k, a, b) attn_simde::mask_cmplt_epi32_mask(k, a, b)
#define _mm512_extractf32x8_ps(v, imm) attn_simde::extractf32x8_ps(v, imm)
#define _mm512_shuffle_f32x4(a, b, imm) attn_simde::shuffle_f32x4(a, b, imm)
#define _mm512_reduce_add_ps(v) attn_simde::reduce_add_ps(v)
#define _mm512_reduce_max_ps(v) attn_simde::reduce_max_ps(v)
#define _mm512_cvtph_ps(h) attn_simde::cvtph_ps(h)
#define _mm512_cvtps_pd(v) attn_simde::cvtps_pd(v)
#define _mm512_cvtepu16_epi32(h) attn_simde::cvtepu16_epi32(h)
#define _mm256_maskz_loadu_epi16(k, p) attn_simde::maskz_loadu_epi16(k, p)
