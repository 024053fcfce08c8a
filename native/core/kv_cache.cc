// KV cache storage: one calloc per tensor, so a large cache costs nothing until it is written
// (zero pages are mapped lazily) and positions never written still read as zeros, not garbage.
#include "attn/kv_cache.h"

#include "attn/kernels.h"

#include <cstdlib>
#include <cstring>

namespace attn {

Status KVCache::init(size_t batch, size_t heads, size_t head_dim, size_t max_len, DType dtype) {
  release();
  if (dtype != DType::kF32 && dtype != DType::kF16 && dtype != DType::kBF16) return Status::kBadShape;
  const size_t size = dtype == DType::kF32 ? sizeof(float) : sizeof(uint16_t);
  size_t elements = 0;
  if (__builtin_mul_overflow(batch, heads, &elements) ||
      __builtin_mul_overflow(elements, head_dim, &elements) ||
      __builtin_mul_overflow(elements, max_len, &elements) ||
      elements > static_cast<size_t>(-1) / (2 * size)) {
    return Status::kOutOfMemory;
  }
  void* keys = std::calloc(elements ? elements : 1, size);
  void* values = std::calloc(elements ? elements : 1, size);
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
  dtype_ = dtype;
  return Status::kOk;
}

void KVCache::release() {
  std::free(keys_);
  std::free(values_);
  keys_ = values_ = nullptr;
  batch_ = heads_ = head_dim_ = max_len_ = length_ = elements_ = 0;
  dtype_ = DType::kF32;
}

void KVCache::attend(AttentionArgs& a, size_t first) const {
  View4 v;
  v.st = head_dim_;
  v.sh = max_len_ * head_dim_;
  v.sb = heads_ * v.sh;
  a.k = a.v = v;
  a.kv_dtype = dtype_;
  const size_t at = first * head_dim_;
  if (dtype_ == DType::kF32) {
    a.k.data = static_cast<const float*>(keys_) + at;
    a.v.data = static_cast<const float*>(values_) + at;
    a.k16 = a.v16 = nullptr;
  } else {
    a.k16 = static_cast<const uint16_t*>(keys_) + at;
    a.v16 = static_cast<const uint16_t*>(values_) + at;
  }
}

namespace {

template <class Convert>
void narrow_row(const float* x, uint16_t* y, size_t n, Convert convert) {
  for (size_t i = 0; i < n; ++i) y[i] = convert(x[i]);
}

}  // namespace

Status KVCache::write(size_t pos, const View4& k, const View4& v, size_t S) {
  if (!allocated() || pos > max_len_ || S > max_len_ - pos) return Status::kBadShape;
  const size_t st = head_dim_, sh = max_len_ * st, sb = heads_ * sh, D = head_dim_;
  for (size_t b = 0; b < batch_; ++b) {
    for (size_t h = 0; h < heads_; ++h) {
      for (size_t t = 0; t < S; ++t) {
        const size_t dst = b * sb + h * sh + (pos + t) * st;
        const float* kr = k.data + b * k.sb + h * k.sh + t * k.st;
        const float* vr = v.data + b * v.sb + h * v.sh + t * v.st;
        switch (dtype_) {
          case DType::kF32:
            std::memcpy(static_cast<float*>(keys_) + dst, kr, D * sizeof(float));
            std::memcpy(static_cast<float*>(values_) + dst, vr, D * sizeof(float));
            break;
          case DType::kF16:
            narrow_row(kr, static_cast<uint16_t*>(keys_) + dst, D, f32_to_f16);
            narrow_row(vr, static_cast<uint16_t*>(values_) + dst, D, f32_to_f16);
            break;
          case DType::kBF16:
            narrow_row(kr, static_cast<uint16_t*>(keys_) + dst, D, f32_to_bf16);
            narrow_row(vr, static_cast<uint16_t*>(values_) + dst, D, f32_to_bf16);
            break;
        }
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
  const KernelTable& kt = kernels();
  const auto widen = dtype_ == DType::kF16 ? kt.cvt_f16_f32 : kt.cvt_bf16_f32;
  const size_t n = length_ * head_dim_;
  for (size_t bh = 0; bh < batch_ * heads_; ++bh) {
    const size_t from = bh * max_len_ * head_dim_, to = bh * n;
    if (dtype_ == DType::kF32) {
      std::memcpy(keys_out + to, static_cast<const float*>(keys_) + from, n * sizeof(float));
      std::memcpy(values_out + to, static_cast<const float*>(values_) + from, n * sizeof(float));
    } else {
      widen(static_cast<const uint16_t*>(keys_) + from, keys_out + to, n);
      widen(static_cast<const uint16_t*>(values_) + from, values_out + to, n);
    }
  }
}

}  // namespace attn
