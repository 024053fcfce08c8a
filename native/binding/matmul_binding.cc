// dot and matmul (signatures in lib/native/binding.ts); every size the core relies on is
// re-checked here against the typed arrays' real lengths, so a direct call with bad arguments
// throws instead of reading or writing out of bounds.
//
// These two are written against the C N-API rather than node-addon-api because they sit on the
// small-call path (the math of a 150x4 @ 4x6 matmul takes a fraction of a microsecond):
// node-addon-api's CallbackInfo heap-allocates past 6 arguments and its TypedArray accessors
// query the array several times, where napi_get_typedarray_info answers everything in one call.
// Errors go out through napi_throw_*_error and an early return, so no C++ exception reaches V8.
#include <napi.h>
#include <node_api.h>

#include "args.h"
#include "attn/kernels.h"
#include "attn/matmul.h"
#include "exports.h"

namespace attn_binding {

namespace {

// dot(a, b) -> number
napi_value dot(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  F32Span a, b;
  if (!read_f32(env, argv[0], "a", &a) || !read_f32(env, argv[1], "b", &b)) return nullptr;
  if (a.length != b.length) {
    fail(env, ErrorKind::kRange, "Expected a and b of equal length but received %zu and %zu", a.length, b.length);
    return nullptr;
  }
  napi_value result;
  if (napi_create_double(env, attn::kernels().vec_dot(a.data, b.data, a.length), &result) != napi_ok) return nullptr;
  return result;
}

// Reads batch = Float64Array [dims(r), aStrides(r), bStrides(r)] into args; counts the batch
// entries and the furthest batch offset into a and b.
bool get_batch(napi_env env, napi_value value, attn::MatmulArgs* args, size_t* batch, size_t* a_last,
               size_t* b_last) {
  F64Span span;
  if (!read_f64(env, value, "batch", &span)) return false;
  const size_t len = span.length;
  if (len % 3 != 0 || len / 3 > attn::kMaxBatchRank) {
    return fail(env, ErrorKind::kRange, "Expected batch of length 3*r with r <= %zu", attn::kMaxBatchRank);
  }
  const double* v = span.data;
  const size_t rank = len / 3;
  args->batch_rank = rank;
  for (size_t i = 0; i < rank; ++i) {
    const double dim = v[i], as = v[rank + i], bs = v[2 * rank + i];
    if (!is_size(dim) || !is_size(as) || !is_size(bs)) {
      return fail(env, ErrorKind::kRange, "Expected non-negative integers in batch");
    }
    if (dim < 1) return fail(env, ErrorKind::kRange, "Expected batch dims >= 1");
    args->batch_dims[i] = static_cast<size_t>(dim);
    args->a_batch_strides[i] = static_cast<size_t>(as);
    args->b_batch_strides[i] = static_cast<size_t>(bs);
    size_t a_step, b_step;
    if (!mul(env, *batch, args->batch_dims[i], "batch size", batch) ||
        !mul(env, args->batch_dims[i] - 1, args->a_batch_strides[i], "a offset", &a_step) ||
        !add(env, *a_last, a_step, "a offset", a_last) ||
        !mul(env, args->batch_dims[i] - 1, args->b_batch_strides[i], "b offset", &b_step) ||
        !add(env, *b_last, b_step, "b offset", b_last)) {
      return false;
    }
  }
  return true;
}

// matmul(a, b, bias | null, out, m, k, n, transA, transB, batch?)
// batch: Float64Array [dims(r), aStrides(r), bStrides(r)] for r leading dims, or undefined.
napi_value matmul(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  attn::MatmulArgs args;
  F32Span a, b, bias, out;
  if (!read_f32(env, argv[0], "a", &a) || !read_f32(env, argv[1], "b", &b)) return nullptr;
  const bool has_bias = !is_nullish(env, argv[2]);
  if (has_bias && !read_f32(env, argv[2], "bias", &bias)) return nullptr;
  if (!read_f32(env, argv[3], "out", &out) || !read_size(env, argv[4], "m", &args.m) ||
      !read_size(env, argv[5], "k", &args.k) || !read_size(env, argv[6], "n", &args.n) ||
      !read_bool(env, argv[7], "transA", &args.trans_a) || !read_bool(env, argv[8], "transB", &args.trans_b)) {
    return nullptr;
  }
  size_t batch = 1, a_last = 0, b_last = 0;
  if (!is_nullish(env, argv[9]) && !get_batch(env, argv[9], &args, &batch, &a_last, &b_last)) return nullptr;

  size_t a_size, b_size, c_matrix, c_size, a_extent, b_extent;
  if (!mul(env, args.m, args.k, "m*k", &a_size) || !mul(env, args.k, args.n, "k*n", &b_size) ||
      !mul(env, args.m, args.n, "m*n", &c_matrix) || !mul(env, c_matrix, batch, "batch*m*n", &c_size) ||
      !add(env, a_last, a_size, "a extent", &a_extent) || !add(env, b_last, b_size, "b extent", &b_extent) ||
      !require_length(env, "a", a.length, a_extent) || !require_length(env, "b", b.length, b_extent) ||
      !require_length(env, "out", out.length, c_size) ||
      (has_bias && !require_length(env, "bias", bias.length, args.n))) {
    return nullptr;
  }
  if (c_size == 0) return nullptr;

  args.a = a.data;
  args.b = b.data;
  args.bias = bias.data;
  args.c = out.data;
  const attn::Status status = attn::matmul(args);
  if (status != attn::Status::kOk) napi_throw_error(env, nullptr, attn::status_message(status));
  return nullptr;
}

}  // namespace

void init_matmul(Napi::Env env, Napi::Object exports) {
  define_function(env, exports, "dot", dot);
  define_function(env, exports, "matmul", matmul);
}

}  // namespace attn_binding
