// rmsNorm, silu, swiglu and rope (signatures in lib/native/binding.ts), the raw bindings of
// attn/llama_ops.h. Every size the core relies on is re-checked against the typed arrays' real
// lengths, so a direct call with bad arguments throws instead of reading or writing out of bounds.
// On the C N-API like matmul_binding.cc: a decode step calls these once per layer on one row, where
// node-addon-api's per-call costs would be most of the time. rope's five sizes are plain arguments
// (as matmul's are): they are all it has, and its small-call path stays free of a struct.
#include <napi.h>
#include <node_api.h>

#include <cmath>

#include "args.h"
#include "attn/llama_ops.h"
#include "exports.h"

namespace attn_binding {

namespace {

bool check_status(napi_env env, attn::Status status) {
  if (status == attn::Status::kOk) return true;
  napi_throw_error(env, nullptr, attn::status_message(status));
  return false;
}

// rmsNorm(x, weight, out, rows, width, eps)
napi_value rms_norm(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  F32Span x, w, out;
  size_t rows, width, size;
  double eps;
  if (!read_f32(env, argv[0], "x", &x) || !read_f32(env, argv[1], "weight", &w) || !read_f32(env, argv[2], "out", &out) ||
      !read_size(env, argv[3], "rows", &rows) || !read_size(env, argv[4], "width", &width) ||
      !read_number(env, argv[5], "eps", &eps)) {
    return nullptr;
  }
  if (width == 0) {
    fail(env, ErrorKind::kRange, "Expected width >= 1");
    return nullptr;
  }
  // eps >= 0 and finite: a negative one could make mean + eps negative (NaN), which is a caller bug.
  if (!(eps >= 0 && std::isfinite(eps))) {
    fail(env, ErrorKind::kRange, "Expected a finite eps >= 0 but received %g", eps);
    return nullptr;
  }
  if (!mul(env, rows, width, "rows*width", &size) || !require_length(env, "x", x.length, size) ||
      !require_length(env, "out", out.length, size) || !require_length(env, "weight", w.length, width)) {
    return nullptr;
  }
  if (size == 0) return nullptr;
  check_status(env, attn::rms_norm(x.data, w.data, out.data, rows, width, eps));
  return nullptr;
}

// silu(x, out): out[i] = silu(x[i]) for i < x.length.
napi_value silu(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  F32Span x, out;
  if (!read_f32(env, argv[0], "x", &x) || !read_f32(env, argv[1], "out", &out) ||
      !require_length(env, "out", out.length, x.length)) {
    return nullptr;
  }
  if (x.length != 0) check_status(env, attn::silu(x.data, out.data, x.length));
  return nullptr;
}

// swiglu(gate, up, out): out[i] = silu(gate[i]) * up[i] for i < gate.length.
napi_value swiglu(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  F32Span gate, up, out;
  if (!read_f32(env, argv[0], "gate", &gate) || !read_f32(env, argv[1], "up", &up) || !read_f32(env, argv[2], "out", &out) ||
      !require_length(env, "up", up.length, gate.length) || !require_length(env, "out", out.length, gate.length)) {
    return nullptr;
  }
  if (gate.length != 0) check_status(env, attn::swiglu(gate.data, up.data, out.data, gate.length));
  return nullptr;
}

// rope(x, positions, invFreq, out, B, S, H, D, rotaryDim): x and out [B, S, H, D]; positions of
// length B * S, or S (shared by the batch); invFreq of length rotaryDim / 2.
napi_value rope(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  F32Span x, inv_freq, out;
  I32Span positions;
  attn::RopeArgs a;
  if (!read_f32(env, argv[0], "x", &x) || !read_i32(env, argv[1], "positions", &positions) ||
      !read_f32(env, argv[2], "invFreq", &inv_freq) || !read_f32(env, argv[3], "out", &out) ||
      !read_size(env, argv[4], "B", &a.B) || !read_size(env, argv[5], "S", &a.S) || !read_size(env, argv[6], "H", &a.H) ||
      !read_size(env, argv[7], "D", &a.D) || !read_size(env, argv[8], "rotaryDim", &a.rotary_dim)) {
    return nullptr;
  }
  if (a.rotary_dim % 2 != 0 || a.rotary_dim > a.D) {
    fail(env, ErrorKind::kRange, "Expected an even rotaryDim <= D (%zu) but received %zu", a.D, a.rotary_dim);
    return nullptr;
  }
  size_t rows, row, size;
  if (!mul(env, a.B, a.S, "B*S", &rows) || !mul(env, a.H, a.D, "H*D", &row) || !mul(env, rows, row, "B*S*H*D", &size) ||
      !require_length(env, "x", x.length, size) || !require_length(env, "out", out.length, size) ||
      !require_length(env, "invFreq", inv_freq.length, a.rotary_dim / 2)) {
    return nullptr;
  }
  if (positions.length != rows && positions.length != a.S) {
    fail(env, ErrorKind::kRange, "Expected positions of length B*S (%zu) or S (%zu) but received %zu", rows, a.S,
         positions.length);
    return nullptr;
  }
  for (size_t i = 0; i < positions.length; ++i) {
    if (positions.data[i] < 0) {
      fail(env, ErrorKind::kRange, "Expected positions >= 0 but received %d at %zu", positions.data[i], i);
      return nullptr;
    }
  }
  if (size == 0) return nullptr;
  a.shared_positions = positions.length != rows;
  a.x = x.data;
  a.positions = positions.data;
  a.inv_freq = inv_freq.data;
  a.y = out.data;
  check_status(env, attn::rope(a));
  return nullptr;
}

}  // namespace

void init_llama_ops(Napi::Env env, Napi::Object exports) {
  define_function(env, exports, "rmsNorm", rms_norm);
  define_function(env, exports, "silu", silu);
  define_function(env, exports, "swiglu", swiglu);
  define_function(env, exports, "rope", rope);
}

}  // namespace attn_binding
