// concatPresent(past, x, params): Float32Array, the raw binding of attn::concat_present. params is
// the wire::present struct (wire.h): B, H, P, S, d and the element strides of the x view. The
// result [B, H, P + S, d] lives in reused memory (recycled_float32_array, pool_worker.h): a decode
// step's present is the size of the whole cache, and fresh pages for it cost more than the copy.
#include <napi.h>

#include <string>

#include "args.h"
#include "attn/present.h"
#include "exports.h"
#include "pool_worker.h"
#include "wire.h"

namespace attn_binding {

namespace {

Napi::Value concat_present(const Napi::CallbackInfo& cb) {
  Napi::Env env = cb.Env();
  namespace F = wire::present;
  static const char* const kNames[] = {ATTN_WIRE_PRESENT(ATTN_WIRE_NAME)};
  const F32Span past = to_f32(cb[0], "past");
  const F32Span x = to_f32(cb[1], "x");
  const F64Span params = to_f64_struct(cb[2], "params", F::kCount);
  if (params.length != F::kCount) {
    throw_range_error(env, "Expected Float64Array of length " + std::to_string(F::kCount) + " for params");
  }
  size_t p[F::kCount];
  for (size_t i = 0; i < F::kCount; ++i) {
    if (!is_size(params.data[i])) throw_range_error(env, std::string("Expected a non-negative integer for params.") + kNames[i]);
    p[i] = static_cast<size_t>(params.data[i]);
  }
  attn::PresentArgs a;
  a.B = p[F::B], a.H = p[F::H], a.P = p[F::P], a.S = p[F::S], a.d = p[F::d];
  if (a.B == 0 || a.H == 0 || a.S == 0 || a.d == 0) throw_range_error(env, "Expected B, H, S and d >= 1");
  const size_t rows = checked_mul(env, a.B, a.H, "B*H");
  check_length(env, "past", past.length, checked_mul(env, checked_mul(env, rows, a.P, "past size"), a.d, "past size"));
  // The furthest element of x: every loop count below is bounded by x's real length.
  size_t x_ext = checked_mul(env, a.B - 1, p[F::xSb], "x extent");
  x_ext = checked_add(env, x_ext, checked_mul(env, a.H - 1, p[F::xSh], "x extent"), "x extent");
  x_ext = checked_add(env, x_ext, checked_mul(env, a.S - 1, p[F::xSt], "x extent"), "x extent");
  x_ext = checked_add(env, x_ext, a.d, "x extent");
  check_length(env, "x", x.length, x_ext);
  if (p[F::xSt] < a.d) throw_range_error(env, "Expected params.xSt >= d (rows of x must not overlap)");
  const size_t total = checked_add(env, a.P, a.S, "P+S");
  const size_t out_size = checked_mul(env, checked_mul(env, rows, total, "present size"), a.d, "present size");
  a.past = past.data;
  a.x = {x.data, p[F::xSb], p[F::xSh], p[F::xSt]};
  Napi::Float32Array out = recycled_float32_array(env, out_size, &a.out);
  const attn::Status status = attn::concat_present(a);
  if (status != attn::Status::kOk) throw Napi::Error::New(env, attn::status_message(status));
  return out;
}

}  // namespace

void init_present(Napi::Env env, Napi::Object exports) {
  exports.Set("concatPresent", Napi::Function::New(env, concat_present, "concatPresent"));
}

}  // namespace attn_binding
