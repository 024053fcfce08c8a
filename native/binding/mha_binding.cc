// binding.MultiHeadAttention(params, wq, wk, wv, wo, bq, bk, bv, bo): a layer that runs its
// projections, attention (reading a native KVCache in place) and output projection in one call.
//
//   params: Float64Array [dIn, dOut, numHeads, numKVHeads, headDim, causal (0|1), scale]
//   forward(x, B, S, cache | null, mask | null, maskStrides | null, y): undefined
//   forwardAsync(same): Promise<undefined>, run on the libuv pool
//   maskStrides: Float64Array [sb, sh, sq, len] over (B, numHeads, S, len), len <= past + S
//
// The layer keeps references to the weight arrays (no copies) and re-reads and re-checks them on
// every call, so a weight whose buffer was detached or replaced is an error, not a stale pointer.
// Concurrency: a cache is held by at most one forwardAsync at a time; any other use of it while
// that call is pending (forward, forwardAsync, truncate, reset, dispose) throws, because
// interleaving two appends would corrupt it. The same layer may run several calls at once.
#include <napi.h>

#include <cstring>
#include <string>
#include <vector>

#include "args.h"
#include "pool_worker.h"
#include "attn/mha.h"
#include "exports.h"
#include "kv_cache_wrap.h"

namespace attn_binding {

namespace {

constexpr size_t kParams = 7;

class MhaWrap;

// Everything one forward call needs, resolved and checked on the JS thread.
struct MhaJob {
  attn::MhaWeights weights;
  attn::MhaCall call;
  KVCacheWrap* cache_wrap = nullptr;
  size_t x_elements = 0, y_elements = 0, mask_elements = 0;
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
    if (!cb[0].IsTypedArray() || cb[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
        cb[0].As<Napi::Float64Array>().ElementLength() != kParams) {
      throw_type_error(env, "Expected Float64Array of length 7 for params");
    }
    auto params = cb[0].As<Napi::Float64Array>();
    size_t sizes[5];
    const char* names[5] = {"dIn", "dOut", "numHeads", "numKVHeads", "headDim"};
    for (size_t i = 0; i < 5; ++i) {
      sizes[i] = to_size(Napi::Number::New(env, params[i]), names[i]);
      if (sizes[i] == 0) throw_range_error(env, std::string("Expected ") + names[i] + " >= 1");
    }
    shape_.d_in = sizes[0];
    shape_.d_out = sizes[1];
    shape_.hq = sizes[2];
    shape_.hkv = sizes[3];
    shape_.head_dim = sizes[4];
    shape_.causal = params[5] != 0;
    shape_.scale = static_cast<float>(params[6]);
    if (shape_.hq % shape_.hkv != 0) throw_range_error(env, "Expected numHeads divisible by numKVHeads");
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
      require_length(env, names[i], span.length, needed[i]);
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
    return w;
  }

  // Parses forward's arguments (x, B, S, cache, mask, maskStrides, y) and checks every extent.
  MhaJob prepare(const Napi::CallbackInfo& cb) {
    Napi::Env env = cb.Env();
    MhaJob job;
    job.weights = resolve_weights(env);
    const F32Span x = to_f32(cb[0], "x");
    const size_t B = to_size(cb[1], "B"), S = to_size(cb[2], "S");
    if (B == 0 || S == 0) throw_range_error(env, "Expected B and S >= 1");
    const F32Span y = to_f32(cb[6], "y");
    const size_t rows = checked_mul(env, B, S, "B*S");
    require_length(env, "x", x.length, checked_mul(env, rows, shape_.d_in, "x size"));
    require_length(env, "y", y.length, checked_mul(env, rows, shape_.d_out, "y size"));
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
      if (!cb[5].IsTypedArray() || cb[5].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
          cb[5].As<Napi::Float64Array>().ElementLength() != 4) {
        throw_type_error(env, "Expected Float64Array of length 4 for maskStrides");
      }
      auto strides = cb[5].As<Napi::Float64Array>();
      attn::MhaMask& m = job.call.mask;
      m.sb = to_size(Napi::Number::New(env, strides[0]), "maskStrides[0]");
      m.sh = to_size(Napi::Number::New(env, strides[1]), "maskStrides[1]");
      m.sq = to_size(Napi::Number::New(env, strides[2]), "maskStrides[2]");
      m.len = to_size(Napi::Number::New(env, strides[3]), "maskStrides[3]");
      if (m.len == 0 || m.len > past + S) {
        throw_range_error(env, "Expected mask length in [1, " + std::to_string(past + S) + "]");
      }
      size_t extent = m.len;
      extent = checked_add(env, extent, checked_mul(env, B - 1, m.sb, "mask extent"), "mask extent");
      extent = checked_add(env, extent, checked_mul(env, shape_.hq - 1, m.sh, "mask extent"), "mask extent");
      extent = checked_add(env, extent, checked_mul(env, S - 1, m.sq, "mask extent"), "mask extent");
      require_length(env, "mask", mask_length, extent);
      job.mask_elements = extent;
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
    const MhaJob job = prepare(cb);
    const attn::Status status = run(job);
    if (status != attn::Status::kOk) throw Napi::Error::New(cb.Env(), attn::status_message(status));
    return cb.Env().Undefined();
  }

  Napi::Value forward_async(const Napi::CallbackInfo& cb);

  attn::MhaShape shape_;
  size_t q_width_ = 0, kv_width_ = 0;
  Napi::ObjectReference weights_[8];  // wq wk wv wo bq bk bv bo; empty when absent
};

class MhaWorker : public PoolWorker {
 public:
  // x, the mask and y belong to the caller, who may transfer (detach) their buffers while the
  // job runs, after which the memory is freed under the pool thread. So the job reads its own
  // copies of x and the mask, writes its own output, and OnOK copies that into y. The layer
  // (holding the weights) and the cache are referenced until the job settles; the weights are
  // read in place, which is safe because lib/mha.ts hands the layer SharedArrayBuffer-backed
  // copies, and a SharedArrayBuffer cannot be detached.
  MhaWorker(Napi::Env env, MhaWrap* layer, const MhaJob& job, const Napi::CallbackInfo& cb)
      : PoolWorker(env, "attn:mhaForward"), deferred_(Napi::Promise::Deferred::New(env)), layer_(layer),
        job_(job), x_(job.call.x, job.call.x + job.x_elements), y_(job.y_elements) {
    job_.call.x = x_.data();
    job_.call.y = y_.data();
    if (job.call.mask.f32) {
      mask_f32_.assign(job.call.mask.f32, job.call.mask.f32 + job.mask_elements);
      job_.call.mask.f32 = mask_f32_.data();
    }
    if (job.call.mask.u8) {
      mask_u8_.assign(job.call.mask.u8, job.call.mask.u8 + job.mask_elements);
      job_.call.mask.u8 = mask_u8_.data();
    }
    y_ref_ = Napi::Persistent(cb[6].As<Napi::Object>());
    if (cb[3].IsObject()) cache_ref_ = Napi::Persistent(cb[3].As<Napi::Object>());
    layer_ref_ = Napi::Persistent(cb.This().As<Napi::Object>());
  }

  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    const attn::Status status = layer_->run(job_);
    if (status != attn::Status::kOk) SetError(attn::status_message(status));
  }

  void OnOK() override {
    release_cache();
    const Napi::Value y = y_ref_.Value();
    if (!y.IsTypedArray() || y.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array ||
        y.As<Napi::Float32Array>().ArrayBuffer().IsDetached() || y.As<Napi::Float32Array>().ElementLength() < y_.size()) {
      deferred_.Reject(Napi::TypeError::New(Env(), "Expected y to stay attached until forwardAsync settles").Value());
      return;
    }
    if (!y_.empty()) std::memcpy(y.As<Napi::Float32Array>().Data(), y_.data(), y_.size() * sizeof(float));
    deferred_.Resolve(Env().Undefined());
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
  std::vector<float> x_, y_, mask_f32_;
  std::vector<uint8_t> mask_u8_;
  Napi::ObjectReference y_ref_, cache_ref_, layer_ref_;
};

Napi::Value MhaWrap::forward_async(const Napi::CallbackInfo& cb) {
  const MhaJob job = prepare(cb);
  auto* worker = new MhaWorker(cb.Env(), this, job, cb);
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
