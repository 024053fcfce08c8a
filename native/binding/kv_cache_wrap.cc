#include "exports.h"

namespace attn_binding {
void init_kv_cache(Napi::Env, Napi::Object) {}
}  // namespace attn_binding
