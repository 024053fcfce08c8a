// attention / attentionAsync: the raw binding of attn::attention. The argument order and the
// 27 params are the contract in /work/notes/ATTENTION_BINDING.md (lib/validate-attention.ts
// builds them). The TS layer has validated everything already; this file re-checks every size
// and stride the kernel relies on against the arrays' real lengths, so a direct call with bad
// arguments throws a TypeError or RangeError and never reads or writes out of bounds.
//
//   attention(q, k, v, y, mask, kvValid, causalOffset, qkOut, params): undefined
//   attentionAsync(...same...): Promise<undefined>, computed on the libuv pool
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

namespace attn_binding {

namespace {

constexpr size_t kParamCount = 27;

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
  std::vector<Napi::Value> keep;  // every array the kernel touches
};

Prepared prepare(const Napi::CallbackInfo& cb) {
  Napi::Env env = cb.Env();
  Prepared out;
  attn::AttentionArgs& a = out.args;
  const F32Span q = to_f32(cb[0], "q"), k = to_f32(cb[1], "k"), v = to_f32(cb[2], "v"), y = to_f32(cb[3], "y");

  if (!cb[8].IsTypedArray() || cb[8].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    throw_type_error(env, "Expected Float64Array of length 27 for params");
  }
  auto params = cb[8].As<Napi::Float64Array>();
  if (params.ElementLength() != kParamCount) {
    throw_range_error(env, "Expected Float64Array of length 27 for params but received length " +
                               std::to_string(params.ElementLength()));
  }
  static const char* const kNames[23] = {"B", "Hq", "Hkv", "Sq", "Skv", "D", "Dv", "q_sb", "q_sh", "q_st",
                                         "k_sb", "k_sh", "k_st", "v_sb", "v_sh", "v_st", "y_sb", "y_sh",
                                         "y_st", "mask_sb", "mask_sh", "mask_sq", "mask_len"};
  size_t p[23];
  for (size_t i = 0; i < 23; ++i) {
    const double d = params[i];
    if (!(d >= 0) || d != std::floor(d) || d > 9007199254740992.0) {
      throw_range_error(env, std::string("Expected a non-negative integer for params[") + std::to_string(i) +
                                 "] (" + kNames[i] + ") but received " + std::to_string(d));
    }
    p[i] = static_cast<size_t>(d);
  }
  a.B = p[0], a.Hq = p[1], a.Hkv = p[2], a.Sq = p[3], a.Skv = p[4], a.D = p[5], a.Dv = p[6];
  if (a.Hq == 0 || a.Hkv == 0 || a.Hq % a.Hkv != 0) {
    throw_range_error(env, "Expected Hq and Hkv >= 1 with Hq % Hkv == 0 but received Hq " + std::to_string(a.Hq) +
                               ", Hkv " + std::to_string(a.Hkv));
  }
  const double scale = params[23], softcap = params[24], causal = params[25], mode = params[26];
  if (!std::isfinite(scale)) throw_range_error(env, "Expected a finite number for params[23] (scale)");
  if (!std::isfinite(softcap) || softcap < 0) {
    throw_range_error(env, "Expected a finite number >= 0 for params[24] (softcap)");
  }
  if (causal != 0 && causal != 1) throw_range_error(env, "Expected 0 or 1 for params[25] (causal)");
  if (mode != -1 && mode != 0 && mode != 1 && mode != 2 && mode != 3) {
    throw_range_error(env, "Expected -1, 0, 1, 2 or 3 for params[26] (qkMode)");
  }
  a.scale = static_cast<float>(scale);
  a.softcap = static_cast<float>(softcap);
  a.causal = causal == 1;
  a.qk_mode = static_cast<int>(mode);

  const size_t q_ext = view_extent(env, a.B, a.Hq, a.Sq, a.D, p[7], p[8], p[9], "q extent");
  const size_t k_ext = view_extent(env, a.B, a.Hkv, a.Skv, a.D, p[10], p[11], p[12], "k extent");
  const size_t v_ext = view_extent(env, a.B, a.Hkv, a.Skv, a.Dv, p[13], p[14], p[15], "v extent");
  const size_t y_ext = view_extent(env, a.B, a.Hq, a.Sq, a.Dv, p[16], p[17], p[18], "y extent");
  require_length(env, "q", q.length, q_ext);
  require_length(env, "k", k.length, k_ext);
  require_length(env, "v", v.length, v_ext);
  require_length(env, "y", y.length, y_ext);
  if (!injective(a.B, a.Hq, a.Sq, a.Dv, p[16], p[17], p[18])) {
    throw_range_error(env, "Expected y strides that give every output element its own address");
  }
  // The kernel loops over B * Hq * Sq rows and Skv keys. Distinct addresses in q (or y) and k (or
  // v) bound those counts by real array lengths; zero strides or zero head sizes would otherwise
  // let a 2^40-key call through on empty arrays and spin for hours.
  if (q_ext != 0 && !injective(a.B, a.Hq, a.Sq, a.D, p[7], p[8], p[9])) {
    throw_range_error(env, "Expected q strides that give every element its own address");
  }
  if (k_ext != 0 && !injective(a.B, a.Hkv, a.Skv, a.D, p[10], p[11], p[12])) {
    throw_range_error(env, "Expected k strides that give every element its own address");
  }
  if (v_ext != 0 && !injective(a.B, a.Hkv, a.Skv, a.Dv, p[13], p[14], p[15])) {
    throw_range_error(env, "Expected v strides that give every element its own address");
  }
  if (a.D == 0 && a.Dv == 0 && a.qk_mode < 0) {
    throw_range_error(env, "Expected D or Dv >= 1 (or a qkOut) so that the loop counts are bounded by an array");
  }
  a.q = {non_null(q.data), p[7], p[8], p[9]};
  a.k = {non_null(k.data), p[10], p[11], p[12]};
  a.v = {non_null(v.data), p[13], p[14], p[15]};
  a.y = non_null(y.data);
  a.y_sb = p[16], a.y_sh = p[17], a.y_st = p[18];
  std::vector<Range> inputs = {range_of(q.data, q_ext, "q"), range_of(k.data, k_ext, "k"),
                               range_of(v.data, v_ext, "v")};

  const Napi::Value mask = cb[4];
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
    a.mask_sb = p[19], a.mask_sh = p[20], a.mask_sq = p[21], a.mask_len = p[22];
    if (a.mask_len > a.Skv) {
      throw_range_error(env, "Expected mask_len <= Skv (" + std::to_string(a.Skv) + ") but received " +
                                 std::to_string(a.mask_len));
    }
    const size_t m_ext = view_extent(env, a.B, a.Hq, a.Sq, a.mask_len, a.mask_sb, a.mask_sh, a.mask_sq, "mask extent");
    require_length(env, "mask", length, m_ext);
    inputs.push_back(a.mask_f32 != nullptr ? range_of(a.mask_f32, m_ext, "mask") : range_of(a.mask_u8, m_ext, "mask"));
    out.keep.push_back(mask);
  }

  const I32Span kv_valid = to_i32_optional(cb[5], "kvValid");
  if (!cb[5].IsNull() && !cb[5].IsUndefined()) {
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
    out.keep.push_back(cb[5]);
  }
  const I32Span offsets = to_i32_optional(cb[6], "causalOffset");
  if (!cb[6].IsNull() && !cb[6].IsUndefined()) {
    if (offsets.length != a.B) {
      throw_range_error(env, "Expected causalOffset of length B = " + std::to_string(a.B) +
                                 " but received length " + std::to_string(offsets.length));
    }
    a.causal_offset = non_null(offsets.data);
    inputs.push_back(range_of(offsets.data, offsets.length, "causalOffset"));
    out.keep.push_back(cb[6]);
  }

  const F32Span qk = to_f32_optional(cb[7], "qkOut");
  const bool has_qk = !(cb[7].IsNull() || cb[7].IsUndefined());
  if (a.qk_mode >= 0) {
    if (!has_qk) throw_type_error(env, "Expected Float32Array for qkOut when qkMode >= 0");
    const size_t need = checked_mul(env, checked_mul(env, checked_mul(env, a.B, a.Hq, "qkOut size"), a.Sq, "qkOut size"),
                                    a.Skv, "qkOut size");
    require_length(env, "qkOut", qk.length, need);
    a.qk_out = non_null(qk.data);
    const Range qk_range = range_of(qk.data, need, "qkOut");
    for (const Range& r : inputs) {
      if (overlaps(qk_range, r)) throw_range_error(env, std::string("Expected qkOut not to overlap ") + r.name);
    }
    inputs.push_back(qk_range);
    out.keep.push_back(cb[7]);
  } else if (has_qk) {
    throw_type_error(env, "Expected null for qkOut when qkMode is -1");
  }
  const Range y_range = range_of(y.data, y_ext, "y");
  for (const Range& r : inputs) {
    if (overlaps(y_range, r)) throw_range_error(env, std::string("Expected y not to overlap ") + r.name);
  }
  for (int i = 0; i < 4; ++i) out.keep.push_back(cb[i]);
  return out;
}

Napi::Value attention(const Napi::CallbackInfo& cb) {
  Prepared prep = prepare(cb);
  const attn::Status status = attn::attention(prep.args);
  if (status != attn::Status::kOk) throw Napi::Error::New(cb.Env(), attn::status_message(status));
  return cb.Env().Undefined();
}

// Holds a reference to every array it reads or writes until the promise settles, so the
// garbage collector cannot free them while the pool thread runs; Execute touches no JS. A
// reference cannot stop a caller from transferring a buffer away, so lib/attention.ts passes
// copies of the caller's arrays (only the outputs and present buffers it made are used in place).
class AttentionWorker : public PoolWorker {
 public:
  AttentionWorker(Napi::Env env, Prepared prep)
      : PoolWorker(env, "node-attention:attention"), args_(prep.args),
        deferred_(Napi::Promise::Deferred::New(env)) {
    for (const Napi::Value& value : prep.keep) refs_.push_back(Napi::Persistent(value.As<Napi::Object>()));
  }

  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    const attn::Status status = attn::attention(args_);
    if (status != attn::Status::kOk) SetError(attn::status_message(status));
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  attn::AttentionArgs args_;
  Napi::Promise::Deferred deferred_;
  std::vector<Napi::ObjectReference> refs_;
};

Napi::Value attention_async(const Napi::CallbackInfo& cb) {
  Napi::Env env = cb.Env();
  Prepared prep;
  try {
    prep = prepare(cb);
  } catch (const Napi::Error& error) {
    // An async function reports bad arguments through its promise, not by throwing.
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Reject(error.Value());
    return deferred.Promise();
  }
  auto* worker = new AttentionWorker(env, std::move(prep));
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
