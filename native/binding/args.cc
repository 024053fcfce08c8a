#include "args.h"

#include <cmath>
#include <cstdarg>
#include <cstdio>

namespace attn_binding {

namespace {

constexpr double kMaxExactInteger = 9007199254740992.0;  // 2^53

const char* type_name(napi_typedarray_type type) {
  switch (type) {
    case napi_float32_array: return "Float32Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_int32_array: return "Int32Array";
    case napi_float64_array: return "Float64Array";
    default: return "typed array";
  }
}

bool read_typed(napi_env env, napi_value value, const char* name, napi_typedarray_type want, void** data,
                size_t* length) {
  napi_typedarray_type type;
  size_t len = 0;
  void* ptr = nullptr;
  napi_value buffer;
  if (napi_get_typedarray_info(env, value, &type, &len, &ptr, &buffer, nullptr) != napi_ok || type != want) {
    return fail(env, ErrorKind::kType, "Expected %s for %s", type_name(want), name);
  }
  // A detached buffer reads as length 0; say so rather than report a size mismatch.
  bool detached = false;
  if (len == 0 && napi_is_detached_arraybuffer(env, buffer, &detached) == napi_ok && detached) {
    return fail(env, ErrorKind::kType, "Expected %s for %s but its ArrayBuffer is detached", type_name(want), name);
  }
  *data = len != 0 ? ptr : nullptr;
  *length = len;
  return true;
}

}  // namespace

bool fail(napi_env env, ErrorKind kind, const char* format, ...) {
  char message[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(message, sizeof message, format, args);
  va_end(args);
  if (kind == ErrorKind::kType) {
    napi_throw_type_error(env, nullptr, message);
  } else {
    napi_throw_range_error(env, nullptr, message);
  }
  return false;
}

bool is_nullish(napi_env env, napi_value value) {
  napi_valuetype type;
  return napi_typeof(env, value, &type) == napi_ok && (type == napi_undefined || type == napi_null);
}

bool read_f32(napi_env env, napi_value value, const char* name, F32Span* out) {
  void* data = nullptr;
  if (!read_typed(env, value, name, napi_float32_array, &data, &out->length)) return false;
  out->data = static_cast<float*>(data);
  return true;
}

bool read_u8(napi_env env, napi_value value, const char* name, U8Span* out) {
  void* data = nullptr;
  if (!read_typed(env, value, name, napi_uint8_array, &data, &out->length)) return false;
  out->data = static_cast<uint8_t*>(data);
  return true;
}

bool read_i32(napi_env env, napi_value value, const char* name, I32Span* out) {
  void* data = nullptr;
  if (!read_typed(env, value, name, napi_int32_array, &data, &out->length)) return false;
  out->data = static_cast<int32_t*>(data);
  return true;
}

bool read_f64(napi_env env, napi_value value, const char* name, F64Span* out) {
  void* data = nullptr;
  if (!read_typed(env, value, name, napi_float64_array, &data, &out->length)) return false;
  out->data = static_cast<const double*>(data);
  return true;
}

bool is_size(double d) { return d >= 0 && d == std::floor(d) && d <= kMaxExactInteger; }

bool read_size(napi_env env, napi_value value, const char* name, size_t* out) {
  double d;
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_number ||
      napi_get_value_double(env, value, &d) != napi_ok) {
    return fail(env, ErrorKind::kType, "Expected integer for %s", name);
  }
  if (!is_size(d)) return fail(env, ErrorKind::kRange, "Expected non-negative integer for %s but received %g", name, d);
  *out = static_cast<size_t>(d);
  return true;
}

bool read_bool(napi_env env, napi_value value, const char* name, bool* out) {
  if (napi_get_value_bool(env, value, out) != napi_ok) return fail(env, ErrorKind::kType, "Expected boolean for %s", name);
  return true;
}

bool read_number(napi_env env, napi_value value, const char* name, double* out) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_number ||
      napi_get_value_double(env, value, out) != napi_ok) {
    return fail(env, ErrorKind::kType, "Expected number for %s", name);
  }
  return true;
}

void define_function(Napi::Env env, Napi::Object exports, const char* name, napi_callback callback) {
  napi_value fn;
  NAPI_THROW_IF_FAILED_VOID(env, napi_create_function(env, name, NAPI_AUTO_LENGTH, callback, nullptr, &fn));
  exports.Set(name, Napi::Value(env, fn));
}

bool mul(napi_env env, size_t a, size_t b, const char* what, size_t* out) {
  if (__builtin_mul_overflow(a, b, out)) return fail(env, ErrorKind::kRange, "%s overflows size_t", what);
  return true;
}

bool add(napi_env env, size_t a, size_t b, const char* what, size_t* out) {
  if (__builtin_add_overflow(a, b, out)) return fail(env, ErrorKind::kRange, "%s overflows size_t", what);
  return true;
}

bool require_length(napi_env env, const char* name, size_t length, size_t needed) {
  if (length >= needed) return true;
  return fail(env, ErrorKind::kRange, "Expected %s to hold at least %zu elements but it holds %zu", name, needed, length);
}

void rethrow_pending(Napi::Env env) { throw Napi::Error::New(env); }

void throw_type_error(Napi::Env env, const std::string& message) { throw Napi::TypeError::New(env, message); }

void throw_range_error(Napi::Env env, const std::string& message) { throw Napi::RangeError::New(env, message); }

F32Span to_f32(const Napi::Value& value, const char* name) {
  F32Span span;
  if (!read_f32(value.Env(), value, name, &span)) rethrow_pending(value.Env());
  return span;
}

F32Span to_f32_optional(const Napi::Value& value, const char* name) {
  if (value.IsUndefined() || value.IsNull()) return F32Span{};
  return to_f32(value, name);
}

U8Span to_u8(const Napi::Value& value, const char* name) {
  U8Span span;
  if (!read_u8(value.Env(), value, name, &span)) rethrow_pending(value.Env());
  return span;
}

I32Span to_i32_optional(const Napi::Value& value, const char* name) {
  I32Span span;
  if (value.IsUndefined() || value.IsNull()) return span;
  if (!read_i32(value.Env(), value, name, &span)) rethrow_pending(value.Env());
  return span;
}

F64Span to_f64_struct(const Napi::Value& value, const char* name, size_t count) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    throw_type_error(value.Env(), "Expected Float64Array of length " + std::to_string(count) + " for " + name);
  }
  F64Span span;
  if (!read_f64(value.Env(), value, name, &span)) rethrow_pending(value.Env());
  return span;
}

size_t to_size(const Napi::Value& value, const char* name) {
  size_t n;
  if (!read_size(value.Env(), value, name, &n)) rethrow_pending(value.Env());
  return n;
}

double to_number(const Napi::Value& value, const char* name) {
  double d;
  if (!read_number(value.Env(), value, name, &d)) rethrow_pending(value.Env());
  return d;
}

size_t checked_mul(Napi::Env env, size_t a, size_t b, const char* what) {
  size_t out;
  if (!mul(env, a, b, what, &out)) rethrow_pending(env);
  return out;
}

size_t checked_add(Napi::Env env, size_t a, size_t b, const char* what) {
  size_t out;
  if (!add(env, a, b, what, &out)) rethrow_pending(env);
  return out;
}

void check_length(Napi::Env env, const char* name, size_t length, size_t needed) {
  if (!require_length(env, name, length, needed)) rethrow_pending(env);
}

}  // namespace attn_binding
