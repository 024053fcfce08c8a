#include "exports.h"

namespace attn_binding {
void init_mha(Napi::Env, Napi::Object) {}
}  // namespace attn_binding
