// KV cache storage: one calloc per tensor, so a large cache costs nothing until it is written
// (zero pages are mapped lazily) and positions never written still read as zeros, not garbage.
#include "attn/kv_cache.h"

#include <cstdlib>
#include <cstring>

namespace attn {

Status KVCache::init(size_t batch, size_t heads, size_t head_dim, size_t max_len) {
  release();
  size_t elements = 0;
  if (__builtin_mul_overflow(batch, heads, &elements) ||
      __builtin_mul_overflow(elements, head_dim, &elements) ||
      __builtin_mul_overflow(elements, max_len, &elements) ||
      elements > static_cast<size_t>(-1) / (2 * sizeof(float))) {
    return Status::kOutOfMemory;
  }
  float* keys = static_cast<float*>(std::calloc(elements ? elements : 1, sizeof(float)));
  float* values = static_cast<float*>(std::calloc(elements ? elements : 1, sizeof(float)));
  if (keys == nullptr || values == nullptr) {
    std::free(keys);
    std::free(values);
    return Status::kOutOfMemory;
  }
  keys_ = keys;
  values_ = values;
  batch_ = batch;
  heads_ = heads;
  head_dim_ = head_dim;
  max_len_ = max_len;
  length_ = 0;
  elements_ = elements;
  return Status::kOk;
}

void KVCache::release() {
  std::free(keys_);
  std::free(values_);
  keys_ = values_ = nullptr;
  batch_ = heads_ = head_dim_ = max_len_ = length_ = elements_ = 0;
}

View4 KVCache::view(const float* data) const {
  View4 v;
  v.data = data;
  v.st = head_dim_;
  v.sh = max_len_ * head_dim_;
  v.sb = heads_ * v.sh;
  return v;
}

Status KVCache::write(size_t pos, const View4& k, const View4& v, size_t S) {
  if (!allocated() || pos > max_len_ || S > max_len_ - pos) return Status::kBadShape;
  const View4 dk = key_view();
  const size_t row_bytes = head_dim_ * sizeof(float);
  for (size_t b = 0; b < batch_; ++b) {
    for (size_t h = 0; h < heads_; ++h) {
      for (size_t t = 0; t < S; ++t) {
        const size_t dst = b * dk.sb + h * dk.sh + (pos + t) * dk.st;
        std::memcpy(keys_ + dst, k.data + b * k.sb + h * k.sh + t * k.st, row_bytes);
        std::memcpy(values_ + dst, v.data + b * v.sb + h * v.sh + t * v.st, row_bytes);
      }
    }
  }
  return Status::kOk;
}

Status KVCache::set_length(size_t n) {
  if (!allocated() || n > max_len_) return Status::kBadShape;
  length_ = n;
  return Status::kOk;
}

Status KVCache::truncate(size_t n) {
  if (n > length_) return Status::kBadShape;
  length_ = n;
  return Status::kOk;
}

void KVCache::read(float* keys_out, float* values_out) const {
  if (length_ == 0) return;  // memcpy from/to a null pointer is undefined even for 0 bytes
  const View4 src = key_view();
  const size_t rows = length_ * head_dim_;
  for (size_t b = 0; b < batch_; ++b) {
    for (size_t h = 0; h < heads_; ++h) {
      const size_t from = b * src.sb + h * src.sh;
      const size_t to = (b * heads_ + h) * rows;
      std::memcpy(keys_out + to, keys_ + from, rows * sizeof(float));
      std::memcpy(values_out + to, values_ + from, rows * sizeof(float));
    }
  }
}

}  // namespace attn
