// dot and matmul. Argument order mirrors lib/native-backend.ts; every size the core relies on
// is re-checked here against the typed arrays' real lengths.
#include <napi.h>

#include "args.h"
#include "attn/kernels.h"
#include "attn/matmul.h"
#include "attn/threads.h"
#include "exports.h"

namespace attn_binding {

namespace {

// dot(a, b) -> number
Napi::Value dot(const Napi::CallbackInfo& cb) {
  Napi::Env env = cb.Env();
  const F32Span a = to_f32(cb[0], "a");
  const F32Span b = to_f32(cb[1], "b");
  if (a.length != b.length) {
    throw_range_error(env, "Expected a and b of equal length but received " +
                               std::to_string(a.length) + " and " + std::to_string(b.length));
  }
  return Napi::Number::New(env, attn::kernels().vec_dot(a.data, b.data, a.length));
}

// matmul(a, b, bias | null, out, m, k, n, transA, transB, batch?)
// batch: Float64Array [dims(r), aStrides(r), bStrides(r)] for r leading dims, or undefined.
Napi::Value matmul(const Napi::CallbackInfo& cb) {
  Napi::Env env = cb.Env();
  attn::MatmulArgs args;
  const F32Span a = to_f32(cb[0], "a");
  const F32Span b = to_f32(cb[1], "b");
  const F32Span bias = to_f32_optional(cb[2], "bias");
  const F32Span out = to_f32(cb[3], "out");
  args.m = to_size(cb[4], "m");
  args.k = to_size(cb[5], "k");
  args.n = to_size(cb[6], "n");
  args.trans_a = to_bool(cb[7], "transA");
  args.trans_b = to_bool(cb[8], "transB");

  size_t batch = 1, a_last = 0, b_last = 0;
  if (cb.Length() > 9 && !cb[9].IsUndefined() && !cb[9].IsNull()) {
    if (!cb[9].IsTypedArray() ||
        cb[9].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
      throw_type_error(env, "Expected Float64Array for batch");
    }
    auto info = cb[9].As<Napi::Float64Array>();
    const size_t len = info.ElementLength();
    if (len % 3 != 0 || len / 3 > attn::kMaxBatchRank) {
      throw_range_error(env, "Expected batch of length 3*r with r <= 8");
    }
    args.batch_rank = len / 3;
    for (size_t i = 0; i < args.batch_rank; ++i) {
      const double dims = info[i], as = info[args.batch_rank + i], bs = info[2 * args.batch_rank + i];
      for (double d : {dims, as, bs}) {
        // Range first: casting a double beyond size_t (1e300, Infinity) to size_t is UB.
        if (!(d >= 0) || d > 9007199254740992.0 || d != static_cast<double>(static_cast<size_t>(d))) {
          throw_range_error(env, "Expected non-negative integers in batch");
        }
      }
      args.batch_dims[i] = static_cast<size_t>(dims);
      args.a_batch_strides[i] = static_cast<size_t>(as);
      args.b_batch_strides[i] = static_cast<size_t>(bs);
      if (args.batch_dims[i] == 0) throw_range_error(env, "Expected batch dims >= 1");
      batch = checked_mul(env, batch, args.batch_dims[i], "batch size");
      a_last = checked_add(env, a_last,
                           checked_mul(env, args.batch_dims[i] - 1, args.a_batch_strides[i], "a offset"),
                           "a offset");
      b_last = checked_add(env, b_last,
                           checked_mul(env, args.batch_dims[i] - 1, args.b_batch_strides[i], "b offset"),
                           "b offset");
    }
  }
  const size_t a_size = checked_mul(env, args.m, args.k, "m*k");
  const size_t b_size = checked_mul(env, args.k, args.n, "k*n");
  const size_t c_size = checked_mul(env, checked_mul(env, args.m, args.n, "m*n"), batch, "batch*m*n");
  require_length(env, "a", a.length, checked_add(env, a_last, a_size, "a extent"));
  require_length(env, "b", b.length, checked_add(env, b_last, b_size, "b extent"));
  require_length(env, "out", out.length, c_size);
  if (bias.data != nullptr) require_length(env, "bias", bias.length, args.n);
  if (args.m == 0 || args.n == 0) return env.Undefined();

  args.a = a.data;
  args.b = b.data;
  args.bias = bias.data;
  args.c = out.data;
  const attn::Status status = attn::matmul(args);
  if (status != attn::Status::kOk) Napi::Error::New(env, attn::status_message(status)).ThrowAsJavaScriptException();
  return env.Undefined();
}

}  // namespace

void init_matmul(Napi::Env env, Napi::Object exports) {
  exports.Set("dot", Napi::Function::New(env, dot, "dot"));
  exports.Set("matmul", Napi::Function::New(env, matmul, "matmul"));
}

}  // namespace attn_binding
