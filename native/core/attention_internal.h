// Pieces shared by the attention drivers (attention_flash.cc, attention_decode.cc,
// attention_scores.cc). Not part of the public C++ API.
//
// A "tile" is a set of query rows that share one kv head: positions [q0, q0 + npos) of every
// query head in the group of kv head hk, row r = (i - q0) * G + g for query head hk * G + g and
// position i. The prefill driver makes one tile per block of positions; the decode driver makes
// one tile of all Sq positions and splits the keys instead. Both run the same online-softmax
// pass over a key range with the table's tile kernels.
#pragma once
#include <cstddef>
#include <cstdint>

#include "attn/attention.h"
#include "attn/kernels.h"
#include "attn/status.h"

namespace attn {
namespace detail {

// Keys per step of the online softmax (rows of the transposed score tile): a multiple of the
// AVX2 kernels' 6-key blocks.
constexpr size_t kKvTile = 96;
// Tiles with at most this many rows use the dot-product kernel on unpacked rows (decode);
// larger ones pack Q into kAttnPanel-row panels.
constexpr size_t kMaxUnpackedRows = 8;

inline size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

// Key j is a candidate for query position i of batch b iff j < row_limit(b, i): the minimum of
// Skv, mask_len (opset-24 short mask), kv_valid[b] and, when causal, i + causal_offset[b] + 1
// (clamped at 0: a row before the first key sees nothing).
int64_t row_limit(const AttentionArgs& a, size_t b, size_t i);

struct Tile {
  size_t b = 0, hk = 0, q0 = 0, npos = 0;
  size_t rows = 0;  // npos * G
  size_t lds = 0;   // rows rounded up to kAttnPanel
  bool packed = false;
};

Tile make_tile(const AttentionArgs& a, size_t b, size_t hk, size_t q0, size_t npos);

// Per-thread working memory for tiles of up to max_rows rows, allocated once per call and
// reused for every tile the thread runs.
class TileScratch {
 public:
  TileScratch() = default;
  ~TileScratch();
  TileScratch(const TileScratch&) = delete;
  TileScratch& operator=(const TileScratch&) = delete;

  // false when the allocation fails; kv_dtype other than kF32 adds the widened keys' buffer.
  bool init(size_t max_rows, size_t D, size_t Dv, DType kv_dtype);

  float* q = nullptr;      // packed panels (lds * D) or plain rows (rows * D)
  float* s = nullptr;      // kKvTile * lds transposed scores / probabilities
  float* o = nullptr;      // rows * Dv unnormalized output, o_r = sum_j p_rj v_j
  float* m = nullptr;      // lds running maxima
  float* l = nullptr;      // lds running sums
  float* alpha = nullptr;  // lds rescale factors of the last step
  int32_t* vis = nullptr;  // lds visible keys of each row in the current step
  int64_t* lim = nullptr;  // lds row limits (row_limit)
  const void** mask_rows = nullptr;  // lds mask rows (element 0 = key 0), when there is a mask
  float* kv = nullptr;     // kKvTile * D: one step of a half-precision cache's keys, widened (prefill)

 private:
  void* block_ = nullptr;
};

// Packs Q, fills lim and mask_rows, sets m = -inf, l = 0, o = 0. Returns the largest row limit.
int64_t tile_begin(const AttentionArgs& a, const Tile& t, TileScratch& sc);

// The online softmax over keys [j_begin, j_end) (row limits still apply).
void tile_pass(const AttentionArgs& a, const KernelTable& kt, const Tile& t, TileScratch& sc, size_t j_begin,
               size_t j_end);

// y_r = o_r / l_r, and 0 for a row that saw no finite score (l = 0).
void tile_finish(const AttentionArgs& a, const Tile& t, const TileScratch& sc);

// Where the y row of tile row r lives.
float* y_row(const AttentionArgs& a, const Tile& t, size_t r);

Status attention_flash(const AttentionArgs& a);
Status attention_decode(const AttentionArgs& a);
Status attention_scores(const AttentionArgs& a);

}  // namespace detail
}  // namespace attn
