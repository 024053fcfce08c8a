#include "args.h"

#include <cmath>
#include <limits>

namespace attn_binding {

void throw_type_error(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, message);
}

void throw_range_error(Napi::Env env, const std::string& message) {
  throw Napi::RangeError::New(env, message);
}

namespace {

template <typename Span, typename T, napi_typedarray_type kType>
Span to_typed(const Napi::Value& value, const char* name, const char* type_name) {
  Napi::Env env = value.Env();
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != kType) {
    throw_type_error(env, std::string("Expected ") + type_name + " for " + name);
  }
  auto array = value.As<Napi::TypedArrayOf<T>>();
  if (array.ArrayBuffer().IsDetached()) {
    throw_type_error(env, std::string("Expected ") + type_name + " for " + name +
                              " but its ArrayBuffer is detached");
  }
  Span span;
  span.length = array.ElementLength();
  span.data = span.length ? array.Data() : nullptr;
  return span;
}

}  // namespace

F32Span to_f32(const Napi::Value& value, const char* name) {
  return to_typed<F32Span, float, napi_float32_array>(value, name, "Float32Array");
}

F32Span to_f32_optional(const Napi::Value& value, const char* name) {
  if (value.IsUndefined() || value.IsNull()) return F32Span{};
  return to_f32(value, name);
}

U8Span to_u8(const Napi::Value& value, const char* name) {
  return to_typed<U8Span, uint8_t, napi_uint8_array>(value, name, "Uint8Array");
}

I32Span to_i32_optional(const Napi::Value& value, const char* name) {
  if (value.IsUndefined() || value.IsNull()) return I32Span{};
  return to_typed<I32Span, int32_t, napi_int32_array>(value, name, "Int32Array");
}

size_t to_size(const Napi::Value& value, const char* name) {
  Napi::Env env = value.Env();
  if (!value.IsNumber()) throw_type_error(env, std::string("Expected integer for ") + name);
  const double d = value.As<Napi::Number>().DoubleValue();
  // 2^53 bounds every exact integer a double holds and is far below SIZE_MAX on 64-bit hosts.
  if (!(d >= 0) || d != std::floor(d) || d > 9007199254740992.0 ||
      d > static_cast<double>(std::numeric_limits<size_t>::max())) {
    throw_range_error(env, std::string("Expected non-negative integer for ") + name +
                               " but received " + value.ToString().Utf8Value());
  }
  return static_cast<size_t>(d);
}

double to_number(const Napi::Value& value, const char* name) {
  if (!value.IsNumber()) throw_type_error(value.Env(), std::string("Expected number for ") + name);
  return value.As<Napi::Number>().DoubleValue();
}

bool to_bool(const Napi::Value& value, const char* name) {
  if (!value.IsBoolean()) throw_type_error(value.Env(), std::string("Expected boolean for ") + name);
  return value.As<Napi::Boolean>().Value();
}

size_t checked_mul(Napi::Env env, size_t a, size_t b, const char* what) {
  size_t out;
  if (__builtin_mul_overflow(a, b, &out)) throw_range_error(env, std::string(what) + " overflows size_t");
  return out;
}

size_t checked_add(Napi::Env env, size_t a, size_t b, const char* what) {
  size_t out;
  if (__builtin_add_overflow(a, b, &out)) throw_range_error(env, std::string(what) + " overflows size_t");
  return out;
}

void require_length(Napi::Env env, const char* name, size_t span_length, size_t needed) {
  if (span_length < needed) {
    throw_range_error(env, std::string("Expected ") + name + " to hold at least " +
                               std::to_string(needed) + " elements but it holds " +
                               std::to_string(span_length));
  }
}

}  // namespace attn_binding
