// The binding's one set of argument helpers. The TypeScript facade validates first with friendly
// messages; these re-checks exist so that a direct call to the raw addon with bad arguments throws
// a TypeError or RangeError instead of touching memory out of bounds.
//
// Each check comes in one form, on the C N-API: `read_*` returns false with a JS exception pending
// (the small-call path in matmul_binding.cc uses them as is, because node-addon-api's accessors
// cost more than a 150x4 @ 4x6 product). The `to_*` adapters for node-addon-api code call the same
// check and rethrow the pending exception as a C++ one.
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

struct F64Span {
  const double* data = nullptr;
  size_t length = 0;
};

enum class ErrorKind { kType, kRange };

// The one error factory: sets a pending TypeError or RangeError (printf-style message) and
// returns false, so checks read `if (!read_x(...)) return nullptr;`.
bool fail(napi_env env, ErrorKind kind, const char* format, ...) __attribute__((format(printf, 3, 4)));

bool is_nullish(napi_env env, napi_value value);

// Typed arrays (byteOffset applied; a detached buffer is a TypeError that says so). Empty arrays
// give data == nullptr.
bool read_f32(napi_env env, napi_value value, const char* name, F32Span* out);
bool read_u8(napi_env env, napi_value value, const char* name, U8Span* out);
bool read_i32(napi_env env, napi_value value, const char* name, I32Span* out);
bool read_f64(napi_env env, napi_value value, const char* name, F64Span* out);

// The one integer check: a non-negative integer that a double holds exactly (<= 2^53).
bool is_size(double d);
bool read_size(napi_env env, napi_value value, const char* name, size_t* out);
bool read_bool(napi_env env, napi_value value, const char* name, bool* out);
bool read_number(napi_env env, napi_value value, const char* name, double* out);

// a * b and a + b without size_t overflow (RangeError naming `what`).
bool mul(napi_env env, size_t a, size_t b, const char* what, size_t* out);
bool add(napi_env env, size_t a, size_t b, const char* what, size_t* out);

// RangeError unless `length` >= `needed`: "Expected <name> to hold at least N elements ...".
bool require_length(napi_env env, const char* name, size_t length, size_t needed);

// exports[name] = a function on the C N-API callback (the small-call path's registration).
void define_function(Napi::Env env, Napi::Object exports, const char* name, napi_callback callback);

// --- node-addon-api adapters: the same checks, throwing Napi::Error ---
[[noreturn]] void rethrow_pending(Napi::Env env);
[[noreturn]] void throw_type_error(Napi::Env env, const std::string& message);
[[noreturn]] void throw_range_error(Napi::Env env, const std::string& message);

F32Span to_f32(const Napi::Value& value, const char* name);
// undefined/null give an empty span with data == nullptr.
F32Span to_f32_optional(const Napi::Value& value, const char* name);
U8Span to_u8(const Napi::Value& value, const char* name);
I32Span to_i32_optional(const Napi::Value& value, const char* name);
// A parameter struct (wire.h): TypeError "Expected Float64Array of length <count> for <name>" when
// it is not a Float64Array; the caller checks the length against `count`.
F64Span to_f64_struct(const Napi::Value& value, const char* name, size_t count);
size_t to_size(const Napi::Value& value, const char* name);
double to_number(const Napi::Value& value, const char* name);

size_t checked_mul(Napi::Env env, size_t a, size_t b, const char* what);
size_t checked_add(Napi::Env env, size_t a, size_t b, const char* what);
void check_length(Napi::Env env, const char* name, size_t length, size_t needed);

}  // namespace attn_binding
