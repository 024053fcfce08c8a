// attention / attentionAsync: the raw binding of attn::attention. The signatures are declared in
// lib/native/binding.ts; `params` is the struct named in wire.h (encoded by lib/native/wire.ts from
// a validated plan). ARCHITECTURE.md shows where this sits on the call path. The TS layer has validated everything already; this file re-checks every size
// and stride the kernel relies on against the arrays' real lengths, so a direct call with bad
// arguments throws a TypeError or RangeError and never reads or writes out of bounds.
//
//   attention(q, k, v, y, mask, kvValid, causalOffset, qkOut, params): undefined
//   attentionAsync(q, k, v, mask, kvValid, causalOffset, params): Promise<{ y, qkOut }>, computed on
//     the libuv pool into arrays it creates (pool_worker.h); qkOut is null when params.qkMode is -1
//   _vecExpsum(x, max): number (test-only: x <- exp(x - max) with the active kernel set)
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "args.h"
#include "pool_worker.h"
#include "attn/attention.h"
#include "attn/kernels.h"
#include "exports.h"
#include "wire.h"

namespace attn_binding {

namespace {

struct Range {
  const void* begin = nullptr;
  const void* end = nullptr;
  const char* name = "";
};

bool overlaps(const Range& a, const Range& b) {
  return a.begin != a.end && b.begin != b.end && a.begin < b.end && b.begin < a.end;
}

template <typename T>
Range range_of(const T* data, size_t extent, const char* name) {
  return Range{data, data + extent, name};
}

// The number of elements a (B, H, S, D) view reaches: (B-1)*sb + (H-1)*sh + (S-1)*st + D, or 0
// when the view is empty.
size_t view_extent(Napi::Env env, size_t B, size_t H, size_t S, size_t D, size_t sb, size_t sh, size_t st,
                   const char* name) {
  if (B == 0 || H == 0 || S == 0 || D == 0) return 0;
  size_t e = checked_mul(env, B - 1, sb, name);
  e = checked_add(env, e, checked_mul(env, H - 1, sh, name), name);
  e = checked_add(env, e, checked_mul(env, S - 1, st, name), name);
  return checked_add(env, e, D, name);
}

// No two (b, h, t, c) elements of y share an address: sorted by stride, each dim of size > 1
// must step past everything the smaller dims reach, or two threads would write the same float.
bool injective(size_t B, size_t H, size_t S, size_t D, size_t sb, size_t sh, size_t st) {
  std::pair<size_t, size_t> dims[4] = {{1, D}, {st, S}, {sh, H}, {sb, B}};
  std::sort(dims, dims + 4);
  size_t reach = 0;
  for (const auto& [stride, size] : dims) {
    if (size <= 1) continue;
    if (stride <= reach) return false;
    reach += (size - 1) * stride;
  }
  return true;
}

// Empty typed arrays report a null data pointer; the kernel never dereferences a view with no
// elements, but it does offset its base pointer, and offsetting null is undefined behavior.
template <typename T>
T* non_null(T* data) {
  static T dummy[1] = {};
  return data != nullptr ? data : dummy;
}

struct Prepared {
  attn::AttentionArgs args;
  // Elements the kernel may touch from each array's start (0 when the array is absent).
  size_t q_ext = 0, k_ext = 0, v_ext = 0, y_ext = 0, mask_ext = 0, qk_ext = 0;
};

// The arguments of one call. y and qkOut are the caller's (sync), or empty values (async): then
// prepare() only computes their extents, and the job creates them after every input is checked.
struct CallValues {
  Napi::Value q, k, v, y, mask, kv_valid, causal_offset, qk, params;
};

Prepared prepare(Napi::Env env, const CallValues& in) {
  Prepared out;
  attn::AttentionArgs& a = out.args;
  const F32Span q = to_f32(in.q, "q"), k = to_f32(in.k, "k"), v = to_f32(in.v, "v");
  const bool own_outputs = in.y.IsEmpty();
  const F32Span y = own_outputs ? F32Span{} : to_f32(in.y, "y");

  namespace F = wire::attention;
  static const char* const kNames[] = {ATTN_WIRE_ATTENTION(ATTN_WIRE_NAME)};
  const F64Span params = to_f64_struct(in.params, "params", F::kCount);
  if (params.length != F::kCount) {
    throw_range_error(env, "Expected Float64Array of length " + std::to_string(F::kCount) +
                               " for params but received length " + std::to_string(params.length));
  }
  const auto size_field = [&](F::Field f) {
    const double d = params.data[f];
    if (!is_size(d)) {
      throw_range_error(env, std::string("Expected a non-negative integer for params.") + kNames[f] +
                                 " but received " + std::to_string(d));
    }
    return static_cast<size_t>(d);
  };
  a.B = size_field(F::B), a.Hq = size_field(F::Hq), a.Hkv = size_field(F::Hkv), a.Sq = size_field(F::Sq);
  a.Skv = size_field(F::Skv), a.D = size_field(F::D), a.Dv = size_field(F::Dv);
  if (a.Hq == 0 || a.Hkv == 0 || a.Hq % a.Hkv != 0) {
    throw_range_error(env, "Expected Hq and Hkv >= 1 with Hq % Hkv == 0 but received Hq " + std::to_string(a.Hq) +
                               ", Hkv " + std::to_string(a.Hkv));
  }
  const double scale = params.data[F::scale], softcap = params.data[F::softcap];
  const double causal = params.data[F::causal], mode = params.data[F::qkMode];
  if (!std::isfinite(scale)) throw_range_error(env, "Expected a finite number for params.scale");
  if (!std::isfinite(softcap) || softcap < 0) throw_range_error(env, "Expected a finite number >= 0 for params.softcap");
  if (causal != 0 && causal != 1) throw_range_error(env, "Expected 0 or 1 for params.causal");
  if (mode != -1 && mode != 0 && mode != 1 && mode != 2 && mode != 3) {
    throw_range_error(env, "Expected -1, 0, 1, 2 or 3 for params.qkMode");
  }
  a.scale = static_cast<float>(scale);
  a.softcap = static_cast<float>(softcap);
  a.causal = causal == 1;
  a.qk_mode = static_cast<int>(mode);
  const attn::View4 qs{nullptr, size_field(F::qSb), size_field(F::qSh), size_field(F::qSt)};
  const attn::View4 ks{nullptr, size_field(F::kSb), size_field(F::kSh), size_field(F::kSt)};
  const attn::View4 vs{nullptr, size_field(F::vSb), size_field(F::vSh), size_field(F::vSt)};
  a.y_sb = size_field(F::ySb), a.y_sh = size_field(F::ySh), a.y_st = size_field(F::ySt);

  const size_t q_ext = view_extent(env, a.B, a.Hq, a.Sq, a.D, qs.sb, qs.sh, qs.st, "q extent");
  const size_t k_ext = view_extent(env, a.B, a.Hkv, a.Skv, a.D, ks.sb, ks.sh, ks.st, "k extent");
  const size_t v_ext = view_extent(env, a.B, a.Hkv, a.Skv, a.Dv, vs.sb, vs.sh, vs.st, "v extent");
  const size_t y_ext = view_extent(env, a.B, a.Hq, a.Sq, a.Dv, a.y_sb, a.y_sh, a.y_st, "y extent");
  check_length(env, "q", q.length, q_ext);
  check_length(env, "k", k.length, k_ext);
  check_length(env, "v", v.length, v_ext);
  if (!own_outputs) check_length(env, "y", y.length, y_ext);
  if (!injective(a.B, a.Hq, a.Sq, a.Dv, a.y_sb, a.y_sh, a.y_st)) {
    throw_range_error(env, "Expected y strides that give every output element its own address");
  }
  // The kernel loops over B * Hq * Sq rows and Skv keys. Distinct addresses in q (or y) and k (or
  // v) bound those counts by real array lengths; zero strides or zero head sizes would otherwise
  // let a 2^40-key call through on empty arrays and spin for hours.
  if (q_ext != 0 && !injective(a.B, a.Hq, a.Sq, a.D, qs.sb, qs.sh, qs.st)) {
    throw_range_error(env, "Expected q strides that give every element its own address");
  }
  if (k_ext != 0 && !injective(a.B, a.Hkv, a.Skv, a.D, ks.sb, ks.sh, ks.st)) {
    throw_range_error(env, "Expected k strides that give every element its own address");
  }
  if (v_ext != 0 && !injective(a.B, a.Hkv, a.Skv, a.Dv, vs.sb, vs.sh, vs.st)) {
    throw_range_error(env, "Expected v strides that give every element its own address");
  }
  if (a.D == 0 && a.Dv == 0 && a.qk_mode < 0) {
    throw_range_error(env, "Expected D or Dv >= 1 (or a qkOut) so that the loop counts are bounded by an array");
  }
  a.q = {non_null(q.data), qs.sb, qs.sh, qs.st};
  a.k = {non_null(k.data), ks.sb, ks.sh, ks.st};
  a.v = {non_null(v.data), vs.sb, vs.sh, vs.st};
  a.y = non_null(y.data);
  std::vector<Range> inputs = {range_of(q.data, q_ext, "q"), range_of(k.data, k_ext, "k"),
                               range_of(v.data, v_ext, "v")};

  const Napi::Value mask = in.mask;
  if (!mask.IsNull() && !mask.IsUndefined()) {
    if (!mask.IsTypedArray()) throw_type_error(env, "Expected Float32Array, Uint8Array or null for mask");
    const napi_typedarray_type type = mask.As<Napi::TypedArray>().TypedArrayType();
    size_t length = 0;
    if (type == napi_float32_array) {
      const F32Span m = to_f32(mask, "mask");
      a.mask_f32 = non_null(m.data);
      length = m.length;
    } else if (type == napi_uint8_array) {
      const U8Span m = to_u8(mask, "mask");
      a.mask_u8 = non_null(m.data);
      length = m.length;
    } else {
      throw_type_error(env, "Expected Float32Array, Uint8Array or null for mask");
    }
    a.mask_sb = size_field(F::maskSb), a.mask_sh = size_field(F::maskSh), a.mask_sq = size_field(F::maskSq);
    a.mask_len = size_field(F::maskLen);
    if (a.mask_len > a.Skv) {
      throw_range_error(env, "Expected mask_len <= Skv (" + std::to_string(a.Skv) + ") but received " +
                                 std::to_string(a.mask_len));
    }
    const size_t m_ext = view_extent(env, a.B, a.Hq, a.Sq, a.mask_len, a.mask_sb, a.mask_sh, a.mask_sq, "mask extent");
    check_length(env, "mask", length, m_ext);
    inputs.push_back(a.mask_f32 != nullptr ? range_of(a.mask_f32, m_ext, "mask") : range_of(a.mask_u8, m_ext, "mask"));
    out.mask_ext = m_ext;
  }

  const I32Span kv_valid = to_i32_optional(in.kv_valid, "kvValid");
  if (!in.kv_valid.IsNull() && !in.kv_valid.IsUndefined()) {
    if (kv_valid.length != a.B) {
      throw_range_error(env, "Expected kvValid of length B = " + std::to_string(a.B) + " but received length " +
                                 std::to_string(kv_valid.length));
    }
    for (size_t b = 0; b < a.B; ++b) {
      if (kv_valid.data[b] < 0 || static_cast<size_t>(kv_valid.data[b]) > a.Skv) {
        throw_range_error(env, "Expected kvValid values in [0, Skv] but received " +
                                   std::to_string(kv_valid.data[b]) + " at index " + std::to_string(b));
      }
    }
    a.kv_valid = non_null(kv_valid.data);
    inputs.push_back(range_of(kv_valid.data, kv_valid.length, "kvValid"));
  }
  const I32Span offsets = to_i32_optional(in.causal_offset, "causalOffset");
  if (!in.causal_offset.IsNull() && !in.causal_offset.IsUndefined()) {
    if (offsets.length != a.B) {
      throw_range_error(env, "Expected causalOffset of length B = " + std::to_string(a.B) +
                                 " but received length " + std::to_string(offsets.length));
    }
    a.causal_offset = non_null(offsets.data);
    inputs.push_back(range_of(offsets.data, offsets.length, "causalOffset"));
  }

  const F32Span qk = own_outputs ? F32Span{} : to_f32_optional(in.qk, "qkOut");
  const bool has_qk = !own_outputs && !(in.qk.IsNull() || in.qk.IsUndefined());
  if (a.qk_mode >= 0 && own_outputs) {
    out.qk_ext = checked_mul(env, checked_mul(env, checked_mul(env, a.B, a.Hq, "qkOut size"), a.Sq, "qkOut size"),
                             a.Skv, "qkOut size");
  } else if (a.qk_mode >= 0) {
    if (!has_qk) throw_type_error(env, "Expected Float32Array for qkOut when qkMode >= 0");
    const size_t need = checked_mul(env, checked_mul(env, checked_mul(env, a.B, a.Hq, "qkOut size"), a.Sq, "qkOut size"),
                                    a.Skv, "qkOut size");
    check_length(env, "qkOut", qk.length, need);
    a.qk_out = non_null(qk.data);
    const Range qk_range = range_of(qk.data, need, "qkOut");
    for (const Range& r : inputs) {
      if (overlaps(qk_range, r)) throw_range_error(env, std::string("Expected qkOut not to overlap ") + r.name);
    }
    inputs.push_back(qk_range);
    out.qk_ext = need;
  } else if (has_qk) {
    throw_type_error(env, "Expected null for qkOut when qkMode is -1");
  }
  const Range y_range = range_of(y.data, y_ext, "y");
  for (const Range& r : inputs) {
    if (overlaps(y_range, r)) throw_range_error(env, std::string("Expected y not to overlap ") + r.name);
  }
  out.q_ext = q_ext, out.k_ext = k_ext, out.v_ext = v_ext, out.y_ext = y_ext;
  return out;
}

Napi::Value attention(const Napi::CallbackInfo& cb) {
  const Prepared prep = prepare(cb.Env(), {cb[0], cb[1], cb[2], cb[3], cb[4], cb[5], cb[6], cb[7], cb[8]});
  const attn::Status status = attn::attention(prep.args);
  if (status != attn::Status::kOk) throw Napi::Error::New(cb.Env(), attn::status_message(status));
  return cb.Env().Undefined();
}

// Runs attn::attention on the pool with its arrays secured as pool_worker.h describes: inputs in
// place when shared, else copied; y and qkOut created here. Execute touches no JS.
class AttentionWorker : public PoolWorker {
 public:
  explicit AttentionWorker(const Napi::CallbackInfo& cb) : PoolWorker(cb.Env(), "node-attention:attention"),
                                                          deferred_(Napi::Promise::Deferred::New(cb.Env())) {
    Napi::Env env = cb.Env();
    const Prepared prep = prepare(env, {cb[0], cb[1], cb[2], Napi::Value(), cb[3], cb[4], cb[5], Napi::Value(), cb[6]});
    args_ = prep.args;
    attn::AttentionArgs& a = args_;
    a.q.data = arrays_.input(cb[0], a.q.data, prep.q_ext);
    a.k.data = arrays_.input(cb[1], a.k.data, prep.k_ext);
    a.v.data = arrays_.input(cb[2], a.v.data, prep.v_ext);
    if (a.mask_f32) a.mask_f32 = arrays_.input(cb[3], a.mask_f32, prep.mask_ext);
    if (a.mask_u8) a.mask_u8 = arrays_.input(cb[3], a.mask_u8, prep.mask_ext);
    if (a.kv_valid) a.kv_valid = arrays_.input(cb[4], a.kv_valid, a.B);
    if (a.causal_offset) a.causal_offset = arrays_.input(cb[5], a.causal_offset, a.B);
    a.y = non_null(arrays_.output(env, prep.y_ext, &y_));
    if (a.qk_mode >= 0) a.qk_out = non_null(arrays_.output(env, prep.qk_ext, &qk_));
  }

  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    const attn::Status status = attn::attention(args_);
    if (status != attn::Status::kOk) SetError(attn::status_message(status));
  }
  void OnOK() override {
    Napi::Object result = Napi::Object::New(Env());
    result.Set("y", y_.Value());
    result.Set("qkOut", qk_.IsEmpty() ? Env().Null() : qk_.Value());
    deferred_.Resolve(result);
  }
  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  attn::AttentionArgs args_;
  Napi::Promise::Deferred deferred_;
  PoolArrays arrays_;
  Napi::ObjectReference y_, qk_;
};

Napi::Value attention_async(const Napi::CallbackInfo& cb) {
  Napi::Env env = cb.Env();
  AttentionWorker* worker = nullptr;
  try {
    worker = new AttentionWorker(cb);
  } catch (const Napi::Error& error) {
    // An async function reports bad arguments through its promise, not by throwing.
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Reject(error.Value());
    return deferred.Promise();
  }
  const Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

// Test-only: runs the active kernel set's vec_expsum on x in place (x <- exp(x - max)) and
// returns the sum, so the tests can measure the vectorized exp against Math.exp.
Napi::Value vec_expsum(const Napi::CallbackInfo& cb) {
  const F32Span x = to_f32(cb[0], "x");
  const double max = to_number(cb[1], "max");
  return Napi::Number::New(cb.Env(), attn::kernels().vec_expsum(x.data, static_cast<float>(max), x.length));
}

}  // namespace

void init_attention(Napi::Env env, Napi::Object exports) {
  exports.Set("attention", Napi::Function::New(env, attention, "attention"));
  exports.Set("attentionAsync", Napi::Function::New(env, attention_async, "attentionAsync"));
  exports.Set("_vecExpsum", Napi::Function::New(env, vec_expsum, "_vecExpsum"));
}

}  // namespace attn_binding
