// binding.MultiHeadAttention(params, wq, wk, wv, wo, bq, bk, bv, bo, invFreq): a layer that runs
// its projections, the rotary embedding of q and k, attention (reading a native KVCache in place)
// and output projection in one call.
//
//   params: the wire::mha struct (wire.h): dIn, dOut, numHeads, numKVHeads, headDim, causal, scale,
//     rotaryDim (0: no rotary embedding)
//   invFreq: Float32Array of rotaryDim / 2 inverse frequencies when rotaryDim > 0 (copied: the
//     layer owns them, so a pool job never reads caller memory for them), else null
//   forward(x, B, S, cache | null, mask | null, maskStrides | null, y, positionOffsets?): undefined
//   forwardAsync(x, B, S, cache | null, mask | null, maskStrides | null, positionOffsets?):
//     Promise<Float32Array y>, run on the libuv pool into a y it creates (pool_worker.h)
//   maskStrides: the wire::mask struct, a view over (B, numHeads, S, maskLen), maskLen <= past + S
//   positionOffsets: undefined/null, or an Int32Array of B values >= 0 subtracted from each row's
//     rotary positions (attn::MhaCall::position_offsets)
// (TypeScript signatures: lib/native/binding.ts.)
//
// The layer keeps references to the weight arrays (no copies) and re-reads and re-checks them on
// every call, so a weight whose buffer was detached or replaced is an error, not a stale pointer.
// Concurrency: a cache is held by at most one forwardAsync at a time; any other use of it while
// that call is pending (forward, forwardAsync, truncate, reset, dispose) throws, because
// interleaving two appends would corrupt it. The same layer may run several calls at once.
#include <napi.h>

#include <string>
#include <vector>

#include "args.h"
#include "pool_worker.h"
#include "attn/mha.h"
#include "exports.h"
#include "kv_cache_wrap.h"
#include "wire.h"

namespace attn_binding {

namespace {

class MhaWrap;

// Everything one forward call needs, resolved and checked on the JS thread.
struct MhaJob {
  attn::MhaWeights weights;
  attn::MhaCall call;
  KVCacheWrap* cache_wrap = nullptr;
  size_t x_elements = 0, y_elements = 0, mask_elements = 0, offset_elements = 0;
};

class MhaWrap : public Napi::ObjectWrap<MhaWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "MultiHeadAttention",
                       {InstanceMethod<&MhaWrap::forward>("forward"),
                        InstanceMethod<&MhaWrap::forward_async>("forwardAsync")});
  }

  explicit MhaWrap(const Napi::CallbackInfo& cb) : Napi::ObjectWrap<MhaWrap>(cb) {
    Napi::Env env = cb.Env();
    namespace F = wire::mha;
    static const char* const kNames[] = {ATTN_WIRE_MHA(ATTN_WIRE_NAME)};
    const F64Span params = to_f64_struct(cb[0], "params", F::kCount);
    if (params.length != F::kCount) {
      throw_type_error(env, "Expected Float64Array of length " + std::to_string(F::kCount) + " for params");
    }
    size_t sizes[5];
    for (size_t i = F::dIn; i <= F::headDim; ++i) {
      if (!is_size(params.data[i])) {
        throw_range_error(env, std::string("Expected a non-negative integer for params.") + kNames[i]);
      }
      sizes[i] = static_cast<size_t>(params.data[i]);
      if (sizes[i] == 0) throw_range_error(env, std::string("Expected ") + kNames[i] + " >= 1");
    }
    shape_.d_in = sizes[F::dIn];
    shape_.d_out = sizes[F::dOut];
    shape_.hq = sizes[F::numHeads];
    shape_.hkv = sizes[F::numKVHeads];
    shape_.head_dim = sizes[F::headDim];
    shape_.causal = params.data[F::causal] != 0;
    shape_.scale = static_cast<float>(params.data[F::scale]);
    if (shape_.hq % shape_.hkv != 0) throw_range_error(env, "Expected numHeads divisible by numKVHeads");
    const double rotary = params.data[F::rotaryDim];
    if (!is_size(rotary) || static_cast<size_t>(rotary) % 2 != 0 || static_cast<size_t>(rotary) > shape_.head_dim) {
      throw_range_error(env, "Expected an even params.rotaryDim in [0, headDim]");
    }
    shape_.rotary_dim = static_cast<size_t>(rotary);
    const Napi::Value inv_freq = cb[9];
    if (shape_.rotary_dim > 0) {
      const F32Span span = to_f32(inv_freq, "invFreq");
      check_length(env, "invFreq", span.length, shape_.rotary_dim / 2);
      inv_freq_.assign(span.data, span.data + shape_.rotary_dim / 2);
    } else if (!inv_freq.IsUndefined() && !inv_freq.IsNull()) {
      throw_type_error(env, "Expected null for invFreq when params.rotaryDim is 0");
    }
    q_width_ = checked_mul(env, shape_.hq, shape_.head_dim, "numHeads*headDim");
    kv_width_ = checked_mul(env, shape_.hkv, shape_.head_dim, "numKVHeads*headDim");

    const char* weight_names[8] = {"wq", "wk", "wv", "wo", "bq", "bk", "bv", "bo"};
    for (size_t i = 0; i < 8; ++i) {
      const Napi::Value value = cb[i + 1];
      if (value.IsUndefined() || value.IsNull()) {
        if (i < 3) throw_type_error(env, std::string("Expected Float32Array for ") + weight_names[i]);
        continue;
      }
      to_f32(value, weight_names[i]);
      weights_[i] = Napi::Persistent(value.As<Napi::Object>());
    }
    if (weights_[3].IsEmpty() && shape_.d_out != q_width_) {
      throw_range_error(env, "Expected dOut == numHeads*headDim when there is no wo");
    }
    resolve_weights(env);
  }

  // The weights' current pointers, each checked against the length this layer needs.
  attn::MhaWeights resolve_weights(Napi::Env env) {
    const size_t d_in = shape_.d_in;
    const size_t needed[8] = {
        checked_mul(env, d_in, q_width_, "wq size"), checked_mul(env, d_in, kv_width_, "wk size"),
        checked_mul(env, d_in, kv_width_, "wv size"), checked_mul(env, q_width_, shape_.d_out, "wo size"),
        q_width_, kv_width_, kv_width_, shape_.d_out};
    const char* names[8] = {"wq", "wk", "wv", "wo", "bq", "bk", "bv", "bo"};
    const float* pointers[8] = {};
    for (size_t i = 0; i < 8; ++i) {
      if (weights_[i].IsEmpty()) continue;
      const F32Span span = to_f32(weights_[i].Value(), names[i]);
      check_length(env, names[i], span.length, needed[i]);
      pointers[i] = span.data;
    }
    attn::MhaWeights w;
    w.wq = pointers[0];
    w.wk = pointers[1];
    w.wv = pointers[2];
    w.wo = pointers[3];
    w.bq = pointers[4];
    w.bk = pointers[5];
    w.bv = pointers[6];
    w.bo = w.wo ? pointers[7] : nullptr;
    w.inv_freq = inv_freq_.empty() ? nullptr : inv_freq_.data();
    return w;
  }

  // Parses forward's arguments (x, B, S, cache, mask, maskStrides, y, positionOffsets) and checks
  // every extent. y is the caller's array (forward) or empty (forwardAsync: the job creates it).
  MhaJob prepare(const Napi::CallbackInfo& cb, const Napi::Value& y_value, const Napi::Value& offsets_value) {
    Napi::Env env = cb.Env();
    MhaJob job;
    job.weights = resolve_weights(env);
    const F32Span x = to_f32(cb[0], "x");
    const size_t B = to_size(cb[1], "B"), S = to_size(cb[2], "S");
    if (B == 0 || S == 0) throw_range_error(env, "Expected B and S >= 1");
    const F32Span y = y_value.IsEmpty() ? F32Span{} : to_f32(y_value, "y");
    const size_t rows = checked_mul(env, B, S, "B*S");
    check_length(env, "x", x.length, checked_mul(env, rows, shape_.d_in, "x size"));
    const size_t y_size = checked_mul(env, rows, shape_.d_out, "y size");
    if (!y_value.IsEmpty()) check_length(env, "y", y.length, y_size);
    job.call.x = x.data;
    job.call.y = y.data;
    job.x_elements = rows * shape_.d_in;
    job.y_elements = rows * shape_.d_out;
    job.call.B = B;
    job.call.S = S;

    size_t past = 0;
    if (!cb[3].IsUndefined() && !cb[3].IsNull()) {
      job.cache_wrap = KVCacheWrap::From(cb[3], "cache");
      attn::KVCache& cache = job.cache_wrap->usable(env);
      if (cache.batch() != B || cache.heads() != shape_.hkv || cache.head_dim() != shape_.head_dim) {
        throw_range_error(env, "Expected a cache of batch " + std::to_string(B) + ", numKVHeads " +
                                   std::to_string(shape_.hkv) + ", headDim " + std::to_string(shape_.head_dim));
      }
      past = cache.length();
      if (S > cache.max_len() - past) {
        throw_range_error(env, "Expected at most " + std::to_string(cache.max_len() - past) +
                                   " new positions for the cache but received " + std::to_string(S));
      }
      job.call.cache = &cache;
    }

    if (!cb[4].IsUndefined() && !cb[4].IsNull()) {
      size_t mask_length = 0;
      if (cb[4].IsTypedArray() && cb[4].As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array) {
        const U8Span mask = to_u8(cb[4], "mask");
        job.call.mask.u8 = mask.data;
        mask_length = mask.length;
      } else {
        const F32Span mask = to_f32(cb[4], "mask");
        job.call.mask.f32 = mask.data;
        mask_length = mask.length;
      }
      namespace M = wire::mask;
      const F64Span strides = to_f64_struct(cb[5], "maskStrides", M::kCount);
      if (strides.length != M::kCount) {
        throw_type_error(env, "Expected Float64Array of length " + std::to_string(M::kCount) + " for maskStrides");
      }
      attn::MhaMask& m = job.call.mask;
      static const char* const kMaskNames[] = {ATTN_WIRE_MASK(ATTN_WIRE_NAME)};
      size_t fields[M::kCount];
      for (size_t i = 0; i < M::kCount; ++i) {
        if (!is_size(strides.data[i])) {
          throw_range_error(env, std::string("Expected non-negative integer for maskStrides.") + kMaskNames[i]);
        }
        fields[i] = static_cast<size_t>(strides.data[i]);
      }
      m.sb = fields[M::maskSb];
      m.sh = fields[M::maskSh];
      m.sq = fields[M::maskSq];
      m.len = fields[M::maskLen];
      if (m.len == 0 || m.len > past + S) {
        throw_range_error(env, "Expected mask length in [1, " + std::to_string(past + S) + "]");
      }
      size_t extent = m.len;
      extent = checked_add(env, extent, checked_mul(env, B - 1, m.sb, "mask extent"), "mask extent");
      extent = checked_add(env, extent, checked_mul(env, shape_.hq - 1, m.sh, "mask extent"), "mask extent");
      extent = checked_add(env, extent, checked_mul(env, S - 1, m.sq, "mask extent"), "mask extent");
      check_length(env, "mask", mask_length, extent);
      job.mask_elements = extent;
    }

    if (!offsets_value.IsUndefined() && !offsets_value.IsNull()) {
      const I32Span offsets = to_i32_optional(offsets_value, "positionOffsets");
      check_length(env, "positionOffsets", offsets.length, B);
      for (size_t b = 0; b < B; ++b) {
        if (offsets.data[b] < 0) throw_range_error(env, "Expected positionOffsets >= 0 but received " +
                                                            std::to_string(offsets.data[b]) + " at " + std::to_string(b));
      }
      job.call.position_offsets = offsets.data;
      job.offset_elements = B;
    }
    return job;
  }

  // Runs on the JS thread (forward) or a pool thread (forwardAsync); touches no JS values.
  // The scratch belongs to the thread, not the layer: a thread runs one call at a time, so
  // concurrent calls never share it, and a model of many layers keeps one set of buffers per
  // thread (sized by its largest call) instead of one per layer.
  attn::Status run(const MhaJob& job) {
    static thread_local attn::MhaScratch scratch;
    return attn::mha_forward(shape_, job.weights, job.call, scratch);
  }

 private:
  Napi::Value forward(const Napi::CallbackInfo& cb) {
    const MhaJob job = prepare(cb, cb[6], cb[7]);
    const attn::Status status = run(job);
    if (status != attn::Status::kOk) throw Napi::Error::New(cb.Env(), attn::status_message(status));
    return cb.Env().Undefined();
  }

  Napi::Value forward_async(const Napi::CallbackInfo& cb);

 public:
  // Weight i (wq wk wv wo bq bk bv bo), or an empty value when absent.
  Napi::Value weight(size_t i) const { return weights_[i].IsEmpty() ? Napi::Value() : weights_[i].Value(); }

 private:

  attn::MhaShape shape_;
  size_t q_width_ = 0, kv_width_ = 0;
  std::vector<float> inv_freq_;  // shape_.rotary_dim / 2 values, or empty
  Napi::ObjectReference weights_[8];  // wq wk wv wo bq bk bv bo; empty when absent
};

class MhaWorker : public PoolWorker {
 public:
  // x, the mask and y are secured as pool_worker.h describes; the weights must be
  // SharedArrayBuffer-backed (every call reads them; lib/mha.ts pins them once). The layer and the
  // cache (native memory, marked busy) are referenced until the job settles.
  MhaWorker(Napi::Env env, MhaWrap* layer, const MhaJob& job, const Napi::CallbackInfo& cb)
      : PoolWorker(env, "attn:mhaForward"), deferred_(Napi::Promise::Deferred::New(env)), layer_(layer), job_(job) {
    static const char* const kWeightNames[8] = {"wq", "wk", "wv", "wo", "bq", "bk", "bv", "bo"};
    for (size_t i = 0; i < 8; ++i) {
      const Napi::Value w = layer->weight(i);
      if (!w.IsEmpty() && !w.IsUndefined()) arrays_.require_shared(w, kWeightNames[i]);
    }
    job_.call.x = arrays_.input(cb[0], job.call.x, job.x_elements);
    if (job.call.mask.f32) job_.call.mask.f32 = arrays_.input(cb[4], job.call.mask.f32, job.mask_elements);
    if (job.call.mask.u8) job_.call.mask.u8 = arrays_.input(cb[4], job.call.mask.u8, job.mask_elements);
    if (job.call.position_offsets) {
      job_.call.position_offsets = arrays_.input(cb[6], job.call.position_offsets, job.offset_elements);
    }
    job_.call.y = arrays_.output(env, job.y_elements, &y_);
    arrays_.keep(cb[3]);
    arrays_.keep(cb.This());
  }

  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    const attn::Status status = layer_->run(job_);
    if (status != attn::Status::kOk) SetError(attn::status_message(status));
  }

  void OnOK() override {
    release_cache();
    deferred_.Resolve(y_.Value());
  }

  void OnError(const Napi::Error& error) override {
    release_cache();
    deferred_.Reject(error.Value());
  }

 private:
  void release_cache() {
    if (job_.cache_wrap) job_.cache_wrap->set_busy(false);
  }

  Napi::Promise::Deferred deferred_;
  MhaWrap* layer_;
  MhaJob job_;
  PoolArrays arrays_;
  Napi::ObjectReference y_;
};

Napi::Value MhaWrap::forward_async(const Napi::CallbackInfo& cb) {
  const MhaJob job = prepare(cb, Napi::Value(), cb[6]);
  auto* worker = new MhaWorker(cb.Env(), this, job, cb);  // throws (before queueing) on unshared weights
  if (job.cache_wrap) job.cache_wrap->set_busy(true);
  const Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

}  // namespace

void init_mha(Napi::Env env, Napi::Object exports) {
  exports.Set("MultiHeadAttention", MhaWrap::Define(env));
}

}  // namespace attn_binding
