// binding.KVCache(batch, numKVHeads, headDim, maxSeqLen, dtype?): dtype 0 F32 (default), 1 F16 or
// 2 BF16. Storage lives in native memory and is reported to V8 as external memory, so the GC sees
// its real cost; it is freed exactly once, by dispose() or by the finalizer, whichever comes first.
#include "kv_cache_wrap.h"

#include <atomic>
#include <cstdint>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <limits>
#include <string>

#include "args.h"
#include "exports.h"

namespace attn_binding {

namespace {

constexpr size_t kTrimAfterBytes = size_t{32} << 20;

// Marks objects made by this constructor, so a look-alike object can never be unwrapped.
constexpr napi_type_tag kKVCacheTag = {0x6b7663616368652dULL, 0x9e3779b97f4a7c15ULL};

// Caches left to the garbage collector are freed together, by finalizers that run on a later turn
// of the event loop, so a loop that creates many of them reaches a peak first; glibc keeps the
// freed blocks (interleaved with live ones, the heap cannot shrink) and RSS stays at that peak.
// Once enough cache memory has been freed, hand it back to the OS.
void return_freed_memory(size_t bytes) {
#if defined(__GLIBC__)
  static std::atomic<size_t> freed{0};  // one counter for every worker thread's caches
  if (freed.fetch_add(bytes) + bytes >= kTrimAfterBytes) {
    freed.store(0);
    malloc_trim(0);
  }
#else
  (void)bytes;
#endif
}

}  // namespace

Napi::Function KVCacheWrap::Define(Napi::Env env) {
  return DefineClass(env, "KVCache",
                     {
                         InstanceAccessor<&KVCacheWrap::length>("length"),
                         InstanceAccessor<&KVCacheWrap::disposed>("disposed"),
                         InstanceMethod<&KVCacheWrap::reset>("reset"),
                         InstanceMethod<&KVCacheWrap::truncate>("truncate"),
                         InstanceMethod<&KVCacheWrap::read>("read"),
                         InstanceMethod<&KVCacheWrap::dispose>("dispose"),
                     });
}

KVCacheWrap* KVCacheWrap::From(const Napi::Value& value, const char* name) {
  if (!value.IsObject() || !value.As<Napi::Object>().CheckTypeTag(&kKVCacheTag)) {
    throw_type_error(value.Env(), std::string("Expected a native KVCache for ") + name);
  }
  return Unwrap(value.As<Napi::Object>());
}

KVCacheWrap::KVCacheWrap(const Napi::CallbackInfo& cb) : Napi::ObjectWrap<KVCacheWrap>(cb) {
  Napi::Env env = cb.Env();
  const size_t batch = to_size(cb[0], "batch");
  const size_t heads = to_size(cb[1], "numKVHeads");
  const size_t head_dim = to_size(cb[2], "headDim");
  const size_t max_len = to_size(cb[3], "maxSeqLen");
  const size_t dtype = cb[4].IsUndefined() ? 0 : to_size(cb[4], "dtype");
  if (batch == 0 || heads == 0 || head_dim == 0 || max_len == 0) {
    throw_range_error(env, "Expected batch, numKVHeads, headDim and maxSeqLen >= 1");
  }
  if (dtype > 2) throw_range_error(env, "Expected dtype in {0, 1, 2} (F32, F16, BF16) but received " + std::to_string(dtype));
  // Causal offsets handed to the attention kernel are int32.
  if (max_len > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    throw_range_error(env, "Expected maxSeqLen <= 2147483647");
  }
  const size_t elements =
      checked_mul(env, checked_mul(env, checked_mul(env, batch, heads, "cache size"), head_dim, "cache size"),
                  max_len, "cache size");
  if (cache_.init(batch, heads, head_dim, max_len, static_cast<attn::DType>(dtype)) != attn::Status::kOk) {
    throw Napi::RangeError::New(env, "Could not allocate " + std::to_string(elements) +
                                    " keys and values for the KV cache");
  }
  cb.This().As<Napi::Object>().TypeTag(&kKVCacheTag);
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(cache_.bytes()));
}

void KVCacheWrap::release(Napi::BasicEnv env) {
  if (!cache_.allocated()) return;
  const int64_t bytes = static_cast<int64_t>(cache_.bytes());
  cache_.release();
  Napi::MemoryManagement::AdjustExternalMemory(env, -bytes);
  return_freed_memory(static_cast<size_t>(bytes));
}

void KVCacheWrap::Finalize(Napi::BasicEnv env) { release(env); }

attn::KVCache& KVCacheWrap::usable(Napi::Env env) {
  if (!cache_.allocated()) throw Napi::Error::New(env, "The KVCache has been disposed");
  if (busy_) {
    throw Napi::Error::New(env, "The KVCache is in use by a pending forwardAsync call; await it first");
  }
  return cache_;
}

Napi::Value KVCacheWrap::length(const Napi::CallbackInfo& cb) {
  return Napi::Number::New(cb.Env(), static_cast<double>(cache_.length()));
}

Napi::Value KVCacheWrap::disposed(const Napi::CallbackInfo& cb) {
  return Napi::Boolean::New(cb.Env(), !cache_.allocated());
}

Napi::Value KVCacheWrap::reset(const Napi::CallbackInfo& cb) {
  usable(cb.Env()).truncate(0);
  return cb.Env().Undefined();
}

Napi::Value KVCacheWrap::truncate(const Napi::CallbackInfo& cb) {
  Napi::Env env = cb.Env();
  attn::KVCache& cache = usable(env);
  const size_t n = to_size(cb[0], "n");
  if (cache.truncate(n) != attn::Status::kOk) {
    throw_range_error(env, "Expected n <= " + std::to_string(cache.length()) + " (the cache length) but received " +
                               std::to_string(n));
  }
  return env.Undefined();
}

// read(keysOut, valuesOut): copies positions [0, length) as (B, Hkv, length, D) float32.
Napi::Value KVCacheWrap::read(const Napi::CallbackInfo& cb) {
  Napi::Env env = cb.Env();
  const attn::KVCache& cache = usable(env);
  const F32Span keys = to_f32(cb[0], "keysOut");
  const F32Span values = to_f32(cb[1], "valuesOut");
  const size_t needed = cache.batch() * cache.heads() * cache.length() * cache.head_dim();
  check_length(env, "keysOut", keys.length, needed);
  check_length(env, "valuesOut", values.length, needed);
  cache.read(keys.data, values.data);
  return env.Undefined();
}

Napi::Value KVCacheWrap::dispose(const Napi::CallbackInfo& cb) {
  Napi::Env env = cb.Env();
  if (busy_) {
    throw Napi::Error::New(env, "The KVCache is in use by a pending forwardAsync call; await it before dispose()");
  }
  release(env);
  return env.Undefined();
}

void init_kv_cache(Napi::Env env, Napi::Object exports) { exports.Set("KVCache", KVCacheWrap::Define(env)); }

}  // namespace attn_binding
