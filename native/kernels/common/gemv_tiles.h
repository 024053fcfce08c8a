// The matrix-vector walk every kernel set shares (KernelTable::gemv_*, attn/kernels.h): one W row
// at a time for one row of x (one sequential stream), V::kRowsW at a time for a batch, applied to
// the rows of x V::kRowsX at a time while they are in L1, so W is read from memory once per call.
// A kernel set supplies its vector traits V and includes this header inside its own anonymous
// namespace, so each copy is compiled with that file's instruction-set flags:
//   V::Reg; V::kLanes; V::kRowsW, V::kRowsX (W rows and x rows of a batch's tile: its 2 kRowsW
//   kRowsX accumulators, kRowsX x vectors and a W vector must fit the registers); V::zero();
//   V::load_x(const float*); V::hold(Reg&) keeps a loaded value in a register; V::fma(a, b, acc)
//   = a * b + acc; V::add(a, b); V::sum(Reg) -> float; V::template load_w<T>(const Elem<T>*)
//   converts kLanes weights to float32; V::prefetch(const void*) asks for a cache line.
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

// The loops over the tile's rows must be unrolled so each accumulator lives in a register
// (rolled, GCC at -O2 keeps them on the stack and m = 2 ran 2.5x slower than m = 1), the final
// sums' loops too (rolled, the accumulators went through the stack: batches of 8 5-10% slower).
#define ATTN_GEMV_UNROLL _Pragma("GCC unroll 8")
// W rows ahead whose lines are prefetched while a row is read. Measured on a 2-core Zen 4/5 VM
// over GPT-2 small's matrices (one x row, 2 threads, the walk below): F16 62-68 GB/s and F32
// 53-57 GB/s; an earlier walk of 4-row groups got 16 and 25 GB/s without prefetching. The
// hardware prefetcher alone ramps up too slowly on rows of 1.5-3 KB.
constexpr size_t kPrefetchRows = 16;

// y[q * ldy + r] = W row r . x row q for r < NR, q < MR; the same columns of pf's NR rows are
// prefetched when it is set.
template <class V, attn::DType T, size_t NR, size_t MR>
inline void gemv_tile(const Elem<T>* w, size_t ldw, const float* x, size_t ldx, size_t k, float* y, size_t ldy,
                      const Elem<T>* pf) {
  typename V::Reg acc[2][NR][MR];  // [even/odd vector of the row][W row][x row]
  ATTN_GEMV_UNROLL
  for (size_t h = 0; h < 2; ++h) {
    ATTN_GEMV_UNROLL
    for (size_t r = 0; r < NR; ++r) {
      ATTN_GEMV_UNROLL
      for (size_t q = 0; q < MR; ++q) acc[h][r][q] = V::zero();
    }
  }
  constexpr size_t L = V::kLanes;
  size_t p = 0;
  for (; p + 2 * L <= k; p += 2 * L) {
    if (pf != nullptr) {  // one line per call for F32 (2 x 64 bytes here), the same line twice for 16-bit
      ATTN_GEMV_UNROLL
      for (size_t r = 0; r < NR; ++r) {
        V::prefetch(pf + r * ldw + p);
        V::prefetch(pf + r * ldw + p + L);
      }
    }
    ATTN_GEMV_UNROLL
    for (size_t h = 0; h < 2; ++h) {
      typename V::Reg xv[MR];
      ATTN_GEMV_UNROLL
      for (size_t q = 0; q < MR; ++q) {
        xv[q] = V::load_x(x + q * ldx + p + h * L);
        // Each x vector feeds NR FMAs; left free, GCC folds it into every one of them as a memory
        // operand, NR loads instead of one (batches of 8 ran 1.2-1.7x slower on Zen 5).
        if constexpr (NR > 1) V::hold(xv[q]);
      }
      ATTN_GEMV_UNROLL
      for (size_t r = 0; r < NR; ++r) {
        const typename V::Reg wv = V::template load_w<T>(w + r * ldw + p + h * L);
        ATTN_GEMV_UNROLL
        for (size_t q = 0; q < MR; ++q) acc[h][r][q] = V::fma(wv, xv[q], acc[h][r][q]);
      }
    }
  }
  if (p + L <= k) {
    ATTN_GEMV_UNROLL
    for (size_t r = 0; r < NR; ++r) {
      const typename V::Reg w0 = V::template load_w<T>(w + r * ldw + p);
      ATTN_GEMV_UNROLL
      for (size_t q = 0; q < MR; ++q) acc[0][r][q] = V::fma(w0, V::load_x(x + q * ldx + p), acc[0][r][q]);
    }
    p += L;
  }
  ATTN_GEMV_UNROLL
  for (size_t r = 0; r < NR; ++r) {
    ATTN_GEMV_UNROLL
    for (size_t q = 0; q < MR; ++q) {
      float s = V::sum(V::add(acc[0][r][q], acc[1][r][q]));
      for (size_t t = p; t < k; ++t) s += weight_to_f32<T>(w + r * ldw + t) * x[q * ldx + t];
      y[q * ldy + r] = s;
    }
  }
}

// NR rows of W against every row of x, V::kRowsX rows at a time; the first pass prefetches pf.
template <class V, attn::DType T, size_t NR>
inline void gemv_rows(const Elem<T>* w, size_t ldw, const float* x, size_t ldx, size_t m, size_t k, float* y,
                      size_t ldy, const Elem<T>* pf) {
  constexpr size_t MX = V::kRowsX;
  size_t i = 0;
  for (; i + MX <= m; i += MX, pf = nullptr) gemv_tile<V, T, NR, MX>(w, ldw, x + i * ldx, ldx, k, y + i * ldy, ldy, pf);
  switch (m - i) {
    case 3: gemv_tile<V, T, NR, (MX > 3 ? 3 : 1)>(w, ldw, x + i * ldx, ldx, k, y + i * ldy, ldy, pf); break;
    case 2: gemv_tile<V, T, NR, (MX > 2 ? 2 : 1)>(w, ldw, x + i * ldx, ldx, k, y + i * ldy, ldy, pf); break;
    case 1: gemv_tile<V, T, NR, 1>(w, ldw, x + i * ldx, ldx, k, y + i * ldy, ldy, pf); break;
    default: break;
  }
}

// One x row: W row by row, one sequential stream. Several: W rows V::kRowsW at a time, so each x
// vector loaded feeds kRowsW FMAs (a batch is bound by loads of x, not by W); the last n % kRowsW
// rows one by one.
template <class V, attn::DType T>
void gemv(const void* wp, size_t ldw, size_t n, const float* x, size_t ldx, size_t m, size_t k, float* y,
          size_t ldy) {
  const Elem<T>* w = static_cast<const Elem<T>*>(wp);
  constexpr size_t NB = V::kRowsW;
  size_t j = 0;
  if (m > 1) {
    for (; j + NB <= n; j += NB) {
      const Elem<T>* pf = j + kPrefetchRows + NB <= n ? w + (j + kPrefetchRows) * ldw : nullptr;
      gemv_rows<V, T, NB>(w + j * ldw, ldw, x, ldx, m, k, y + j, ldy, pf);
    }
  }
  for (; j < n; ++j) {
    const Elem<T>* pf = j + kPrefetchRows < n ? w + (j + kPrefetchRows) * ldw : nullptr;
    gemv_rows<V, T, 1>(w + j * ldw, ldw, x, ldx, m, k, y + j, ldy, pf);
  }
}
