// A preallocated key/value cache for incremental decoding.
//
//   keys and values are each (B, Hkv, max_len, D), row-major; positions [0, length) are valid.
//
// The layout keeps one head's positions contiguous, so attention reads the cache in place
// through strides (sb = Hkv*max_len*D, sh = max_len*D, st = D) and appending a token writes
// B*Hkv rows of D floats. The cache does no locking: the binding guarantees that one call at a
// time touches it.
#pragma once
#include <cstddef>

#include "attn/attention.h"
#include "attn/status.h"

namespace attn {

class KVCache {
 public:
  KVCache() = default;
  ~KVCache() { release(); }
  KVCache(const KVCache&) = delete;
  KVCache& operator=(const KVCache&) = delete;

  // Allocates zeroed storage; kOutOfMemory (cache left empty) when that fails.
  Status init(size_t batch, size_t heads, size_t head_dim, size_t max_len);
  // Frees the storage; the cache then reports allocated() == false. Safe to call twice.
  void release();

  bool allocated() const { return keys_ != nullptr; }
  size_t batch() const { return batch_; }
  size_t heads() const { return heads_; }
  size_t head_dim() const { return head_dim_; }
  size_t max_len() const { return max_len_; }
  size_t length() const { return length_; }
  // Bytes held by keys and values together (what is reported to the JS engine).
  size_t bytes() const { return 2 * elements_ * sizeof(float); }

  // Views of the whole storage; positions >= length() hold stale data the caller must not read.
  View4 key_view() const { return view(keys_); }
  View4 value_view() const { return view(values_); }

  // Copies S positions into slots [pos, pos + S) without changing length(): the caller commits
  // them with set_length() once the step that produced them has succeeded, so a failed step
  // leaves the valid positions untouched. k and v are (B, Hkv, S, D) views.
  Status write(size_t pos, const View4& k, const View4& v, size_t S);
  // kBadShape unless n <= max_len (set_length) or n <= length (truncate).
  Status set_length(size_t n);
  Status truncate(size_t n);

  // Copies positions [0, length) of keys and values into (B, Hkv, length, D) contiguous arrays.
  void read(float* keys_out, float* values_out) const;

 private:
  View4 view(const float* data) const;

  float* keys_ = nullptr;
  float* values_ = nullptr;
  size_t batch_ = 0, heads_ = 0, head_dim_ = 0, max_len_ = 0, length_ = 0, elements_ = 0;
};

}  // namespace attn
