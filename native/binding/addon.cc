// The addon's export table. Everything here converts and checks arguments; the math lives in
// native/core. The module is context-aware (NODE_API_MODULE): per-instance state, if any, is
// attached to the env, so the addon loads in several worker_threads at once.
#include <napi.h>

#include <cstddef>

#include "attn/kernels.h"
#include "attn/threads.h"
#include "args.h"
#include "exports.h"

namespace attn_binding {

namespace {

Napi::Value info(const Napi::CallbackInfo& cb) {
  Napi::Env env = cb.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("isa", attn::kernels().isa);
  size_t count = 0;
  const char* const* names = attn::supported_isas(&count);
  Napi::Array isas = Napi::Array::New(env, count);
  for (size_t i = 0; i < count; ++i) isas.Set(static_cast<uint32_t>(i), names[i]);
  out.Set("isas", isas);
  // An unknown NODE_ATTENTION_SIMD value: ignored at load (all sets stay), reported here.
  const char* simd_error = attn::isa_env_error();
  out.Set("simdError", simd_error != nullptr ? Napi::Value(Napi::String::New(env, simd_error)) : env.Null());
  out.Set("threads", attn::num_threads());
  out.Set("threading", attn::threading_name());
  return out;
}

Napi::Value set_num_threads(const Napi::CallbackInfo& cb) {
  const size_t n = to_size(cb[0], "threads");
  if (n < 1 || n > 4096) throw_range_error(cb.Env(), "Expected threads in [1, 4096]");
  attn::set_num_threads(static_cast<int>(n));
  return cb.Env().Undefined();
}

Napi::Value select_isa(const Napi::CallbackInfo& cb) {
  if (!cb[0].IsString()) throw_type_error(cb.Env(), "Expected string for isa");
  const std::string isa = cb[0].As<Napi::String>().Utf8Value();
  // c_str() would cut "scalar\0avx2" at the NUL and select "scalar".
  if (isa.find('\0') != std::string::npos) return Napi::Boolean::New(cb.Env(), false);
  return Napi::Boolean::New(cb.Env(), attn::select_isa(isa.c_str()));
}

}  // namespace

void init_runtime(Napi::Env env, Napi::Object exports) {
  exports.Set("info", Napi::Function::New(env, info, "info"));
  exports.Set("setNumThreads", Napi::Function::New(env, set_num_threads, "setNumThreads"));
  exports.Set("selectIsa", Napi::Function::New(env, select_isa, "selectIsa"));
}

}  // namespace attn_binding

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  attn_binding::init_runtime(env, exports);
  attn_binding::init_matmul(env, exports);
  attn_binding::init_attention(env, exports);
  attn_binding::init_kv_cache(env, exports);
  attn_binding::init_mha(env, exports);
  attn_binding::init_probe(env, exports);
  attn_binding::init_wire(env, exports);
  attn_binding::init_present(env, exports);
  attn_binding::init_llama_ops(env, exports);
  attn_binding::init_decoder(env, exports);
  return exports;
}

NODE_API_MODULE(node_attention, Init)
