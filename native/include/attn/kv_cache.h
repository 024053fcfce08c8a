// A preallocated key/value cache for incremental decoding.
//
//   keys and values are each (B, Hkv, max_len, D), row-major; positions [0, length) are valid.
//
// The layout keeps one head's positions contiguous, so attention reads the cache in place
// through strides (sb = Hkv*max_len*D, sh = max_len*D, st = D) and appending a token writes
// B*Hkv rows of D elements. Elements are float32, or float16 / bfloat16 (rounded to nearest even
// as they are written): long-context decode is bound by reading the cache, and 16-bit halves it.
// The cache does no locking: the binding guarantees that one call at a time touches it.
#pragma once
#include <cstddef>

#include "attn/attention.h"
#include "attn/half.h"
#include "attn/status.h"

namespace attn {

class KVCache {
 public:
  KVCache() = default;
  ~KVCache() { release(); }
  KVCache(const KVCache&) = delete;
  KVCache& operator=(const KVCache&) = delete;

  // Allocates zeroed storage; kOutOfMemory (cache left empty) when that fails.
  Status init(size_t batch, size_t heads, size_t head_dim, size_t max_len, DType dtype = DType::kF32);
  // Frees the storage; the cache then reports allocated() == false. Safe to call twice.
  void release();

  bool allocated() const { return keys_ != nullptr; }
  size_t batch() const { return batch_; }
  size_t heads() const { return heads_; }
  size_t head_dim() const { return head_dim_; }
  size_t max_len() const { return max_len_; }
  size_t length() const { return length_; }
  DType dtype() const { return dtype_; }
  // Bytes held by keys and values together (what is reported to the JS engine).
  size_t bytes() const { return 2 * elements_ * element_size(); }

  // Points a's keys and values at positions [first, max_len) of the storage (a.Skv is the
  // caller's); positions >= length() hold stale data the caller must not let it read.
  void attend(AttentionArgs& a, size_t first) const;

  // Copies S positions into slots [pos, pos + S) without changing length(): the caller commits
  // them with set_length() once the step that produced them has succeeded, so a failed step
  // leaves the valid positions untouched. k and v are (B, Hkv, S, D) views.
  Status write(size_t pos, const View4& k, const View4& v, size_t S);
  // kBadShape unless n <= max_len (set_length) or n <= length (truncate).
  Status set_length(size_t n);
  Status truncate(size_t n);

  // Copies positions [0, length) of keys and values into (B, Hkv, length, D) contiguous float32
  // arrays (16-bit elements widened exactly).
  void read(float* keys_out, float* values_out) const;

 private:
  size_t element_size() const { return dtype_ == DType::kF32 ? sizeof(float) : sizeof(uint16_t); }

  void* keys_ = nullptr;
  void* values_ = nullptr;
  DType dtype_ = DType::kF32;
  size_t batch_ = 0, heads_ = 0, head_dim_ = 0, max_len_ = 0, length_ = 0, elements_ = 0;
};

}  // namespace attn
