// Each binding file registers its functions on the exports object; addon.cc calls them in turn.
#pragma once
#include <napi.h>

namespace attn_binding {

void init_runtime(Napi::Env env, Napi::Object exports);
void init_matmul(Napi::Env env, Napi::Object exports);
void init_attention(Napi::Env env, Napi::Object exports);
void init_kv_cache(Napi::Env env, Napi::Object exports);
void init_mha(Napi::Env env, Napi::Object exports);
void init_probe(Napi::Env env, Napi::Object exports);
void init_wire(Napi::Env env, Napi::Object exports);
void init_present(Napi::Env env, Napi::Object exports);
void init_llama_ops(Napi::Env env, Napi::Object exports);
void init_decoder(Napi::Env env, Napi::Object exports);

}  // namespace attn_binding
