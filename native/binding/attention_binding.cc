#include "exports.h"

namespace attn_binding {
void init_attention(Napi::Env, Napi::Object) {}
}  // namespace attn_binding
