// The native KVCache object (Napi::ObjectWrap over attn::KVCache), shared with mha_binding.cc,
// which unwraps it to run a layer against the cache in place.
#pragma once
#include <napi.h>

#include "attn/kv_cache.h"

namespace attn_binding {

class KVCacheWrap : public Napi::ObjectWrap<KVCacheWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  // The cache behind `value`, or a TypeError naming `name` when it is not a native KVCache.
  static KVCacheWrap* From(const Napi::Value& value, const char* name);

  explicit KVCacheWrap(const Napi::CallbackInfo& cb);
  void Finalize(Napi::BasicEnv env) override;

  // Throws (never crashes) when the cache was disposed or a forwardAsync call holds it.
  attn::KVCache& usable(Napi::Env env);
  // Set while an async layer call reads and writes the cache on the thread pool.
  void set_busy(bool busy) { busy_ = busy; }

 private:
  Napi::Value length(const Napi::CallbackInfo& cb);
  Napi::Value disposed(const Napi::CallbackInfo& cb);
  Napi::Value reset(const Napi::CallbackInfo& cb);
  Napi::Value truncate(const Napi::CallbackInfo& cb);
  Napi::Value read(const Napi::CallbackInfo& cb);
  Napi::Value dispose(const Napi::CallbackInfo& cb);
  void release(Napi::BasicEnv env);

  attn::KVCache cache_;
  bool busy_ = false;
};

}  // namespace attn_binding
