// The V-slice walk that the x86 attn_pv kernels share (f32_attn_avx2.cc, f32_attn_avx512.cc): keys
// in slices that stay in L1 while every row block and column block uses them, the next slice
// prefetched, row blocks with no visible key in a slice skipped. Each kernel set supplies the
// register tile (its pv_rows) and includes this header inside its own anonymous namespace, so
// each copy is compiled with that file's instruction-set flags and none is shared across sets.
//
// Keys per slice: with one row block (decode) V comes from memory and short slices keep the
// prefetch of the next one timely; with many row blocks V is in L2 and longer slices spend fewer
// O-tile loads and stores per key. kSliceKeys is also the decode QK's prefetch distance.
constexpr size_t kSliceKeys = 16;
constexpr size_t kSliceKeysManyRows = 48;

// Asks for rows [from, min(from + n, end)) of a strided view to be fetched into L1 (E: float, or
// the uint16_t bits of a half-precision cache).
template <class E>
inline void prefetch_rows(const E* x, size_t x_st, size_t from, size_t n, size_t end, size_t cols) {
  const size_t to = from + n < end ? from + n : end;
  for (size_t j = from; j < to; ++j) {
    const char* row = reinterpret_cast<const char*>(x + j * x_st);
    for (size_t b = 0; b < cols * sizeof(E); b += 64) _mm_prefetch(row + b, _MM_HINT_T0);
  }
}

// o_r <- alpha_r * o_r + sum_j p[j*ldp + r] * v_j (attn_pv's contract, attn/kernels.h), in blocks of
// kRows rows: rows_fn(rows, p, ldp, v, v_st, n, alpha | null, o, ldo, dv) computes one block over n
// keys, rescaling by alpha only when it is given (the first slice).
template <size_t kRows, class E, typename RowsFn>
void pv_in_slices(const float* p, size_t ldp, const E* v, size_t v_st, const int32_t* vis, const float* alpha,
                  float* o, size_t ldo, size_t nr, size_t dv, RowsFn rows_fn) {
  int32_t nk = 0;
  for (size_t r = 0; r < nr; ++r) nk = vis[r] > nk ? vis[r] : nk;
  const size_t slice = nr <= kRows ? kSliceKeys : kSliceKeysManyRows;
  for (size_t j0 = 0; j0 < static_cast<size_t>(nk); j0 += slice) {
    prefetch_rows(v, v_st, j0 + slice, slice, static_cast<size_t>(nk), dv);
    for (size_t r = 0; r < nr; r += kRows) {
      const size_t rows = nr - r < kRows ? nr - r : kRows;
      // Keys past every row's visible range have p = 0. A block with no visible key at all
      // keeps o as is (its alpha is 1, or 0 with o = 0), so it is skipped outright.
      int32_t end = 0;
      for (size_t i = 0; i < rows; ++i) end = vis[r + i] > end ? vis[r + i] : end;
      if (static_cast<size_t>(end) <= j0) continue;
      const size_t n = static_cast<size_t>(end) - j0 < slice ? static_cast<size_t>(end) - j0 : slice;
      rows_fn(rows, p + j0 * ldp + r, ldp, v + j0 * v_st, v_st, n, j0 == 0 ? alpha + r : nullptr, o + r * ldo, ldo, dv);
    }
  }
}
