// binding.wire: the field names of every parameter struct, in index order (wire.h), from which
// lib/native/wire.ts builds its encoders.
#include <napi.h>

#include "exports.h"
#include "wire.h"

namespace attn_binding {

namespace {

Napi::Array names(Napi::Env env, const char* const* list, size_t count) {
  Napi::Array out = Napi::Array::New(env, count);
  for (size_t i = 0; i < count; ++i) out.Set(static_cast<uint32_t>(i), list[i]);
  return out;
}

}  // namespace

void init_wire(Napi::Env env, Napi::Object exports) {
  static const char* const kAttention[] = {ATTN_WIRE_ATTENTION(ATTN_WIRE_NAME)};
  static const char* const kMha[] = {ATTN_WIRE_MHA(ATTN_WIRE_NAME)};
  static const char* const kMask[] = {ATTN_WIRE_MASK(ATTN_WIRE_NAME)};
  static const char* const kPresent[] = {ATTN_WIRE_PRESENT(ATTN_WIRE_NAME)};
  static const char* const kDecoder[] = {ATTN_WIRE_DECODER(ATTN_WIRE_NAME)};
  Napi::Object wire = Napi::Object::New(env);
  wire.Set("attention", names(env, kAttention, wire::attention::kCount));
  wire.Set("mha", names(env, kMha, wire::mha::kCount));
  wire.Set("mask", names(env, kMask, wire::mask::kCount));
  wire.Set("present", names(env, kPresent, wire::present::kCount));
  wire.Set("decoder", names(env, kDecoder, wire::decoder::kCount));
  wire.Freeze();
  exports.Set("wire", wire);
}

}  // namespace attn_binding
