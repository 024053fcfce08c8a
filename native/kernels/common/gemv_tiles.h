// The matrix-vector walk every kernel set shares (KernelTable::gemv_*, attn/kernels.h): W rows in
// groups of kRowsW, each group applied to the rows of x kRowsX at a time while it is in L1, so W
// comes from memory once per call. A kernel set supplies its vector traits V and includes this
// header inside its own anonymous namespace, so each copy is compiled with that file's
// instruction-set flags:
//   V::Reg; V::kLanes; V::zero(); V::load_x(const float*); V::fma(a, b, acc) = a * b + acc;
//   V::sum(Reg) -> float; V::template load_w<T>(const Elem<T>*) converts kLanes weights to float32;
//   V::prefetch(const void*) asks for a cache line.
// The last k % kLanes columns are summed in scalar float32, converted by attn/half.h.
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

constexpr size_t kRowsW = 4;
constexpr size_t kRowsX = 4;
// Row groups ahead whose lines are prefetched while a group is read. A group's rows are short
// streams (768 F16 weights are 24 cache lines), too short for the hardware prefetcher to reach
// full speed on each, so the walk asks for the lines of the group two ahead itself.
constexpr size_t kPrefetchGroups = 2;

// y[q * ldy + r] = W row r . x row q for r < NR, q < MR; the same columns of rows pf + r * ldw
// are prefetched when pf is set.
template <class V, attn::DType T, size_t NR, size_t MR>
inline void gemv_tile(const Elem<T>* w, size_t ldw, const float* x, size_t ldx, size_t k, float* y, size_t ldy,
                      const Elem<T>* pf) {
  typename V::Reg acc[NR][MR];
  for (size_t r = 0; r < NR; ++r) {
    for (size_t q = 0; q < MR; ++q) acc[r][q] = V::zero();
  }
  size_t p = 0;
  for (; p + V::kLanes <= k; p += V::kLanes) {
    typename V::Reg xv[MR];
    for (size_t q = 0; q < MR; ++q) xv[q] = V::load_x(x + q * ldx + p);
    if (pf != nullptr) {
      for (size_t r = 0; r < NR; ++r) V::prefetch(pf + r * ldw + p);
    }
    for (size_t r = 0; r < NR; ++r) {
      const typename V::Reg wv = V::template load_w<T>(w + r * ldw + p);
      for (size_t q = 0; q < MR; ++q) acc[r][q] = V::fma(wv, xv[q], acc[r][q]);
    }
  }
  for (size_t r = 0; r < NR; ++r) {
    for (size_t q = 0; q < MR; ++q) {
      float s = V::sum(acc[r][q]);
      for (size_t t = p; t < k; ++t) s += weight_to_f32<T>(w + r * ldw + t) * x[q * ldx + t];
      y[q * ldy + r] = s;
    }
  }
}

// Every row of x against NR rows of W; the first pass over them prefetches pf's rows.
template <class V, attn::DType T, size_t NR>
inline void gemv_rows(const Elem<T>* w, size_t ldw, const float* x, size_t ldx, size_t m, size_t k, float* y,
                      size_t ldy, const Elem<T>* pf) {
  size_t i = 0;
  for (; i + kRowsX <= m; i += kRowsX, pf = nullptr) {
    gemv_tile<V, T, NR, kRowsX>(w, ldw, x + i * ldx, ldx, k, y + i * ldy, ldy, pf);
  }
  switch (m - i) {
    case 3: gemv_tile<V, T, NR, 3>(w, ldw, x + i * ldx, ldx, k, y + i * ldy, ldy, pf); break;
    case 2: gemv_tile<V, T, NR, 2>(w, ldw, x + i * ldx, ldx, k, y + i * ldy, ldy, pf); break;
    case 1: gemv_tile<V, T, NR, 1>(w, ldw, x + i * ldx, ldx, k, y + i * ldy, ldy, pf); break;
    default: break;
  }
}

template <class V, attn::DType T>
void gemv(const void* wp, size_t ldw, size_t n, const float* x, size_t ldx, size_t m, size_t k, float* y,
          size_t ldy) {
  const Elem<T>* w = static_cast<const Elem<T>*>(wp);
  constexpr size_t kAhead = kPrefetchGroups * kRowsW;
  size_t j = 0;
  for (; j + kRowsW <= n; j += kRowsW) {
    // Whole groups only, so no prefetch address lies past W.
    const Elem<T>* pf = j + kAhead + kRowsW <= n ? w + (j + kAhead) * ldw : nullptr;
    gemv_rows<V, T, kRowsW>(w + j * ldw, ldw, x, ldx, m, k, y + j, ldy, pf);
  }
  for (; j < n; ++j) gemv_rows<V, T, 1>(w + j * ldw, ldw, x, ldx, m, k, y + j, ldy, nullptr);
}
