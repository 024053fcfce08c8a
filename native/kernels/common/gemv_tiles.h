// The matrix-vector walk every kernel set shares (KernelTable::gemv_*, attn/kernels.h): one W row at
// a time, applied to the rows of x kRowsX at a time while it is in L1, so W is read from memory
// once per call, front to back, as one sequential stream. A kernel set supplies its vector traits V
// and includes this header inside its own anonymous namespace, so each copy is compiled with that
// file's instruction-set flags:
//   V::Reg; V::kLanes; V::zero(); V::load_x(const float*); V::fma(a, b, acc) = a * b + acc;
//   V::add(a, b); V::sum(Reg) -> float; V::template load_w<T>(const Elem<T>*) converts kLanes
//   weights to float32; V::prefetch(const void*) asks for a cache line.
// Each (W row, x row) pair sums in two vector accumulators (even and odd vectors of the row, then
// added), the last k % kLanes columns in scalar float32: the same order whatever m, so a row of a
// batch gets the bits it gets alone.
#pragma once

template <attn::DType T>
using Elem = std::conditional_t<T == attn::DType::kF32, float, uint16_t>;

template <attn::DType T>
inline float weight_to_f32(const Elem<T>* w) {
  if constexpr (T == attn::DType::kF32) {
    return *w;
  } else if constexpr (T == attn::DType::kF16) {
    return attn::f16_to_f32(*w);
  } else {
    return attn::bf16_to_f32(*w);
  }
}

constexpr size_t kRowsX = 4;
// W rows ahead whose lines are prefetched while a row is read. Measured on a 2-core Zen 4/5 VM
// over GPT-2 small's matrices (F16, one x row): no prefetch 16 GB/s, 16 rows ahead 44 GB/s with
// 2 threads; the hardware prefetcher alone ramps up too slowly on 1.5 KB rows.
constexpr size_t kPrefetchRows = 16;

// y[q * ldy] = W row . x row q for q < MR; the same columns of pf are prefetched when it is set.
template <class V, attn::DType T, size_t MR>
inline void gemv_tile(const Elem<T>* w, const float* x, size_t ldx, size_t k, float* y, size_t ldy, const Elem<T>* pf) {
  typename V::Reg even[MR], odd[MR];
  for (size_t q = 0; q < MR; ++q) even[q] = odd[q] = V::zero();
  constexpr size_t L = V::kLanes;
  size_t p = 0;
  for (; p + 2 * L <= k; p += 2 * L) {
    if (pf != nullptr) {  // one line per call for F32 (2 x 64 bytes here), the same line twice for 16-bit
      V::prefetch(pf + p);
      V::prefetch(pf + p + L);
    }
    const typename V::Reg w0 = V::template load_w<T>(w + p), w1 = V::template load_w<T>(w + p + L);
    for (size_t q = 0; q < MR; ++q) {
      even[q] = V::fma(w0, V::load_x(x + q * ldx + p), even[q]);
      odd[q] = V::fma(w1, V::load_x(x + q * ldx + p + L), odd[q]);
    }
  }
  if (p + L <= k) {
    const typename V::Reg w0 = V::template load_w<T>(w + p);
    for (size_t q = 0; q < MR; ++q) even[q] = V::fma(w0, V::load_x(x + q * ldx + p), even[q]);
    p += L;
  }
  for (size_t q = 0; q < MR; ++q) {
    float s = V::sum(V::add(even[q], odd[q]));
    for (size_t t = p; t < k; ++t) s += weight_to_f32<T>(w + t) * x[q * ldx + t];
    y[q * ldy] = s;
  }
}

template <class V, attn::DType T>
void gemv(const void* wp, size_t ldw, size_t n, const float* x, size_t ldx, size_t m, size_t k, float* y,
          size_t ldy) {
  const Elem<T>* w = static_cast<const Elem<T>*>(wp);
  for (size_t j = 0; j < n; ++j) {
    const Elem<T>* row = w + j * ldw;
    // The first pass over a row prefetches the row kPrefetchRows ahead (none past the last row).
    const Elem<T>* pf = j + kPrefetchRows < n ? row + kPrefetchRows * ldw : nullptr;
    size_t i = 0;
    for (; i + kRowsX <= m; i += kRowsX, pf = nullptr) {
      gemv_tile<V, T, kRowsX>(row, x + i * ldx, ldx, k, y + i * ldy + j, ldy, pf);
    }
    switch (m - i) {
      case 3: gemv_tile<V, T, 3>(row, x + i * ldx, ldx, k, y + i * ldy + j, ldy, pf); break;
      case 2: gemv_tile<V, T, 2>(row, x + i * ldx, ldx, k, y + i * ldy + j, ldy, pf); break;
      case 1: gemv_tile<V, T, 1>(row, x + i * ldx, ldx, k, y + i * ldy + j, ldy, pf); break;
      default: break;
    }
  }
}
