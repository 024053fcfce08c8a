// Argument conversion and re-checks for the raw binding. The TypeScript layer validates first
// with friendly messages; these checks exist so that a direct call to the binding with bad
// arguments throws instead of touching memory out of bounds.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace attn_binding {

struct F32Span {
  float* data = nullptr;
  size_t length = 0;
};

struct U8Span {
  uint8_t* data = nullptr;
  size_t length = 0;
};

struct I32Span {
  int32_t* data = nullptr;
  size_t length = 0;
};

[[noreturn]] void throw_type_error(Napi::Env env, const std::string& message);
[[noreturn]] void throw_range_error(Napi::Env env, const std::string& message);

// A Float32Array argument (byteOffset applied); throws TypeError naming `name` otherwise.
// Detached buffers are rejected.
F32Span to_f32(const Napi::Value& value, const char* name);
// Same, but undefined/null give an empty span with data == nullptr.
F32Span to_f32_optional(const Napi::Value& value, const char* name);
U8Span to_u8(const Napi::Value& value, const char* name);
I32Span to_i32_optional(const Napi::Value& value, const char* name);

// A non-negative integer (a size or count) that fits size_t; throws RangeError otherwise.
size_t to_size(const Napi::Value& value, const char* name);
double to_number(const Napi::Value& value, const char* name);
bool to_bool(const Napi::Value& value, const char* name);

// a * b without size_t overflow (throws RangeError naming `what` on overflow).
size_t checked_mul(Napi::Env env, size_t a, size_t b, const char* what);
size_t checked_add(Napi::Env env, size_t a, size_t b, const char* what);

// Throws RangeError unless `span_length` >= `needed`.
void require_length(Napi::Env env, const char* name, size_t span_length, size_t needed);

}  // namespace attn_binding
