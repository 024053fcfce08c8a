// binding.Decoder(params, weights): a decoder-only model (attn/decoder.h) over weight arrays that JS
// owns, and its states, each B sequences decoded together with their own KV caches.
//
//   params: the wire::decoder struct (wire.h)
//   weights: an array, in this order: tokens, positions | null, then per layer norm1Weight,
//     norm1Bias | null, qkv, qkvBias | null, o, oBias | null, norm2Weight, norm2Bias | null, up,
//     upBias | null, down, downBias | null; then finalWeight, finalBias | null, head | null (tied),
//     invFreq | null. Matrices are Float32Array (dtype F32) or Uint16Array (F16, BF16) of
//     rows * cols [out, in]; the rest Float32Array. Every one SharedArrayBuffer-backed: the pool
//     jobs of every state read them, and a SharedArrayBuffer cannot be detached, so the pointers
//     taken here stay valid while the decoder references the arrays.
//   new DecoderState(decoder, B, maxLen, pad | null); pad: Int32Array of B left-pad counts
//   state.step(tokens, S, logits, allPositions, probsLayer?, probs?): logits of each row's last
//     token (B, vocab), or of every token (B*S, vocab), written into `logits`; with probs, layer
//     probsLayer's attention probabilities (B, numHeads, S, length + S) too
//   state.stepAsync(tokens, S, logits, allPositions): Promise<undefined>, the same on the libuv
//     pool; `logits` must be SharedArrayBuffer-backed (the job writes it while JS runs)
//   state.truncate(n), state.length, state.dispose()
// (TypeScript signatures: lib/native/binding.ts.) A state runs one call at a time: while a
// stepAsync is pending, every other use of it throws.
#include <napi.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "args.h"
#include "attn/decoder.h"
#include "exports.h"
#include "pool_worker.h"
#include "wire.h"

namespace attn_binding {

namespace {

constexpr size_t kMaxBatch = size_t{1} << 16;

constexpr napi_type_tag kDecoderTag = {0x6465636f64657221ULL, 0x7f4a7c159e3779b9ULL};

const char* dtype_name(attn::DType dtype) {
  return dtype == attn::DType::kF16 ? "F16" : dtype == attn::DType::kBF16 ? "BF16" : "F32";
}

class DecoderWrap : public Napi::ObjectWrap<DecoderWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Decoder", {});
  }

  static DecoderWrap* From(const Napi::Value& value) {
    if (!value.IsObject() || !value.As<Napi::Object>().CheckTypeTag(&kDecoderTag)) {
      throw_type_error(value.Env(), "Expected a native Decoder");
    }
    return Unwrap(value.As<Napi::Object>());
  }

  explicit DecoderWrap(const Napi::CallbackInfo& cb) : Napi::ObjectWrap<DecoderWrap>(cb) {
    Napi::Env env = cb.Env();
    parse_params(env, cb[0]);
    if (!cb[1].IsArray()) throw_type_error(env, "Expected an array of weight arrays for weights");
    weights_list_ = Napi::Persistent(cb[1].As<Napi::Object>());
    const Napi::Array list = cb[1].As<Napi::Array>();
    const size_t expected = 2 + 12 * config_.layers + 4;
    if (list.Length() != expected) {
      throw_range_error(env, "Expected " + std::to_string(expected) + " weight arrays but received " +
                                 std::to_string(list.Length()));
    }
    const size_t E = config_.width, D = config_.head_dim;
    const size_t q_width = checked_mul(env, config_.hq, D, "numHeads*headDim");
    const size_t qkv_rows = checked_add(env, q_width, checked_mul(env, 2 * config_.hkv, D, "kv width"), "qkv rows");
    const size_t up_rows = config_.mlp == attn::MlpKind::kSwiglu ? checked_mul(env, 2, config_.ffn, "2*ffn") : config_.ffn;
    const bool layer_norm = config_.norm == attn::NormKind::kLayerNorm;
    uint32_t at = 0;
    auto next = [&]() { return list.Get(at++); };
    weights_.tokens = matrix(env, next(), "tokens", config_.vocab, E);
    const Napi::Value positions = next();
    if (config_.rotary_dim == 0) {
      weights_.positions = matrix(env, positions, "positions", config_.max_positions, E);
    } else if (!positions.IsNull()) {
      throw_type_error(env, "Expected null for positions in a rotary model");
    }
    weights_.layers.resize(config_.layers);
    for (size_t l = 0; l < config_.layers; ++l) {
      attn::DecoderLayer& layer = weights_.layers[l];
      const std::string p = "layers[" + std::to_string(l) + "].";
      layer.norm1.weight = vector(env, next(), p + "norm1Weight", E, false);
      layer.norm1.bias = vector(env, next(), p + "norm1Bias", E, !layer_norm);
      layer.qkv.w = matrix(env, next(), p + "qkv", qkv_rows, E);
      layer.qkv.bias = vector(env, next(), p + "qkvBias", qkv_rows, true);
      layer.o.w = matrix(env, next(), p + "o", E, q_width);
      layer.o.bias = vector(env, next(), p + "oBias", E, true);
      layer.norm2.weight = vector(env, next(), p + "norm2Weight", E, false);
      layer.norm2.bias = vector(env, next(), p + "norm2Bias", E, !layer_norm);
      layer.up.w = matrix(env, next(), p + "up", up_rows, E);
      layer.up.bias = vector(env, next(), p + "upBias", up_rows, true);
      layer.down.w = matrix(env, next(), p + "down", E, config_.ffn);
      layer.down.bias = vector(env, next(), p + "downBias", E, true);
      if (!layer_norm && (layer.norm1.bias || layer.norm2.bias)) throw_type_error(env, "Expected null norm biases with RMSNorm");
    }
    weights_.final_norm.weight = vector(env, next(), "finalWeight", E, false);
    weights_.final_norm.bias = vector(env, next(), "finalBias", E, !layer_norm);
    const Napi::Value head = next();
    if (tied_ != head.IsNull()) throw_type_error(env, tied_ ? "Expected null for head (tied)" : "Expected a matrix for head");
    weights_.head = tied_ ? weights_.tokens : matrix(env, head, "head", config_.vocab, E);
    const Napi::Value inv_freq = next();
    if (config_.rotary_dim > 0) {
      weights_.inv_freq = vector(env, inv_freq, "invFreq", config_.rotary_dim / 2, false);
    } else if (!inv_freq.IsNull()) {
      throw_type_error(env, "Expected null for invFreq without a rotary embedding");
    }
    cb.This().As<Napi::Object>().TypeTag(&kDecoderTag);
  }

  const attn::DecoderConfig& config() const { return config_; }
  const attn::DecoderWeights& weights() const { return weights_; }

 private:
  void parse_params(Napi::Env env, const Napi::Value& value) {
    namespace F = wire::decoder;
    static const char* const kNames[] = {ATTN_WIRE_DECODER(ATTN_WIRE_NAME)};
    const F64Span params = to_f64_struct(value, "params", F::kCount);
    if (params.length != F::kCount) {
      throw_type_error(env, "Expected Float64Array of length " + std::to_string(F::kCount) + " for params");
    }
    size_t v[F::kCount] = {};
    for (size_t i = 0; i < F::kCount; ++i) {
      if (i == F::eps || i == F::scale) continue;
      if (!is_size(params.data[i])) {
        throw_range_error(env, std::string("Expected a non-negative integer for params.") + kNames[i]);
      }
      v[i] = static_cast<size_t>(params.data[i]);
    }
    for (size_t i : {F::vocab, F::width, F::layers, F::numHeads, F::numKVHeads, F::headDim, F::ffn}) {
      if (v[i] == 0) throw_range_error(env, std::string("Expected params.") + kNames[i] + " >= 1");
    }
    config_.vocab = v[F::vocab];
    config_.width = v[F::width];
    config_.layers = v[F::layers];
    config_.hq = v[F::numHeads];
    config_.hkv = v[F::numKVHeads];
    config_.head_dim = v[F::headDim];
    config_.ffn = v[F::ffn];
    config_.max_positions = v[F::maxPositions];
    if (config_.hq % config_.hkv != 0) throw_range_error(env, "Expected numHeads divisible by numKVHeads");
    if (v[F::norm] > 1 || v[F::mlp] > 1 || v[F::dtype] > 2 || v[F::tied] > 1) {
      throw_range_error(env, "Expected params.norm and params.mlp in {0, 1}, params.dtype in {0, 1, 2}, params.tied in {0, 1}");
    }
    config_.norm = static_cast<attn::NormKind>(v[F::norm]);
    config_.mlp = static_cast<attn::MlpKind>(v[F::mlp]);
    dtype_ = static_cast<attn::DType>(v[F::dtype]);
    tied_ = v[F::tied] == 1;
    config_.rotary_dim = v[F::rotaryDim];
    if (config_.rotary_dim % 2 != 0 || config_.rotary_dim > config_.head_dim) {
      throw_range_error(env, "Expected an even params.rotaryDim in [0, headDim]");
    }
    if (config_.rotary_dim == 0 && config_.max_positions == 0) {
      throw_range_error(env, "Expected params.maxPositions >= 1 with learned positions");
    }
    config_.window = v[F::window];
    config_.eps = params.data[F::eps];
    config_.scale = static_cast<float>(params.data[F::scale]);
    if (!(config_.eps >= 0) || !std::isfinite(config_.scale)) throw_range_error(env, "Expected params.eps >= 0 and a finite params.scale");
  }

  // A SharedArrayBuffer-backed typed array of `type` holding at least `count` elements.
  const void* shared_array(Napi::Env env, const Napi::Value& value, const std::string& name, napi_typedarray_type type,
                           size_t count) {
    const char* type_name = type == napi_float32_array ? "Float32Array" : "Uint16Array";
    if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != type) {
      throw_type_error(env, "Expected " + std::string(type_name) + " for " + name);
    }
    if (!is_shared(value)) throw_type_error(env, "Expected a SharedArrayBuffer-backed " + std::string(type_name) + " for " + name);
    // napi_get_arraybuffer_info refuses a SharedArrayBuffer: the typed array's own info has the pointer.
    size_t length = 0;
    void* data = nullptr;
    if (napi_get_typedarray_info(env, value, nullptr, &length, &data, nullptr, nullptr) != napi_ok) {
      throw_type_error(env, "Expected a readable " + std::string(type_name) + " for " + name);
    }
    check_length(env, name.c_str(), length, count);
    return data;
  }

  attn::Matrix matrix(Napi::Env env, const Napi::Value& value, const std::string& name, size_t rows, size_t cols) {
    attn::Matrix m;
    m.dtype = dtype_;
    m.rows = rows;
    m.cols = cols;
    const napi_typedarray_type type = dtype_ == attn::DType::kF32 ? napi_float32_array : napi_uint16_array;
    if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != type) {
      throw_type_error(env, "Expected " + std::string(type == napi_float32_array ? "Float32Array" : "Uint16Array") +
                                " for " + name + " (dtype " + dtype_name(dtype_) + ")");
    }
    m.data = shared_array(env, value, name, type, checked_mul(env, rows, cols, name.c_str()));
    return m;
  }

  const float* vector(Napi::Env env, const Napi::Value& value, const std::string& name, size_t count, bool optional) {
    if (optional && value.IsNull()) return nullptr;
    return static_cast<const float*>(shared_array(env, value, name, napi_float32_array, count));
  }

  attn::DecoderConfig config_;
  attn::DecoderWeights weights_;
  attn::DType dtype_ = attn::DType::kF32;
  bool tied_ = false;
  Napi::ObjectReference weights_list_;  // keeps every weight array alive with the decoder
};

struct StepJob {
  std::vector<int32_t> tokens;
  attn::DecoderStep step;
};

class DecoderStateWrap : public Napi::ObjectWrap<DecoderStateWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "DecoderState",
                       {InstanceAccessor<&DecoderStateWrap::length>("length"),
                        InstanceMethod<&DecoderStateWrap::step>("step"),
                        InstanceMethod<&DecoderStateWrap::step_async>("stepAsync"),
                        InstanceMethod<&DecoderStateWrap::truncate>("truncate"),
                        InstanceMethod<&DecoderStateWrap::dispose>("dispose")});
  }

  explicit DecoderStateWrap(const Napi::CallbackInfo& cb) : Napi::ObjectWrap<DecoderStateWrap>(cb) {
    Napi::Env env = cb.Env();
    decoder_ = DecoderWrap::From(cb[0]);
    decoder_ref_ = Napi::Persistent(cb[0].As<Napi::Object>());
    const size_t B = to_size(cb[1], "B"), max_len = to_size(cb[2], "maxLen");
    if (B == 0 || max_len == 0) throw_range_error(env, "Expected B and maxLen >= 1");
    // The state keeps a few B-long arrays besides the caches: bounded so that a hostile B is a
    // RangeError here, not an allocation the size of the address space.
    if (B > kMaxBatch) throw_range_error(env, "Expected B <= " + std::to_string(kMaxBatch) + " but received " + std::to_string(B));
    if (max_len > static_cast<size_t>(std::numeric_limits<int32_t>::max())) throw_range_error(env, "Expected maxLen <= 2147483647");
    const I32Span pad = to_i32_optional(cb[3], "pad");
    if (pad.data) {
      check_length(env, "pad", pad.length, B);
      for (size_t b = 0; b < B; ++b) {
        if (pad.data[b] < 0 || static_cast<size_t>(pad.data[b]) >= max_len) {
          throw_range_error(env, "Expected pad[" + std::to_string(b) + "] in [0, maxLen) but received " + std::to_string(pad.data[b]));
        }
      }
    }
    const size_t kv_dtype = cb[4].IsUndefined() ? 0 : to_size(cb[4], "kvDtype");
    if (kv_dtype > 2) throw_range_error(env, "Expected kvDtype in {0, 1, 2} (F32, F16, BF16) but received " + std::to_string(kv_dtype));
    const attn::DecoderConfig& c = decoder_->config();
    checked_mul(env, checked_mul(env, checked_mul(env, checked_mul(env, B, c.hkv, "cache size"), c.head_dim, "cache size"), max_len,
                                 "cache size"),
                2 * c.layers, "cache size");
    if (state_.init(c, B, max_len, pad.data, static_cast<attn::DType>(kv_dtype)) != attn::Status::kOk) {
      throw Napi::RangeError::New(env, "Could not allocate the KV caches (" + std::to_string(c.layers) + " layers, batch " +
                                           std::to_string(B) + ", maxLen " + std::to_string(max_len) + ")");
    }
    bytes_ = static_cast<int64_t>(state_.bytes());
    Napi::MemoryManagement::AdjustExternalMemory(env, bytes_);
  }

  void Finalize(Napi::BasicEnv env) override { release(env); }

  // Runs on the JS thread (step) or a pool thread (stepAsync); touches no JS values.
  attn::Status run(const attn::DecoderStep& step) {
    return attn::decoder_step(decoder_->config(), decoder_->weights(), state_, step);
  }

  void set_busy(bool busy) { busy_ = busy; }

 private:
  void release(Napi::BasicEnv env) {
    if (bytes_ == 0) return;
    state_.release();
    Napi::MemoryManagement::AdjustExternalMemory(env, -bytes_);
    bytes_ = 0;
  }

  void usable(Napi::Env env) {
    if (bytes_ == 0) throw Napi::Error::New(env, "The decoder state has been disposed");
    if (busy_) throw Napi::Error::New(env, "The decoder state is in use by a pending stepAsync call; await it first");
  }

  // Parses (tokens, S, logits, allPositions[, probsLayer, probs]) and checks every extent and id.
  // sync: the step runs before JS does again, so it reads the tokens in place and may report
  // probabilities; otherwise the job gets its own copy of the tokens.
  StepJob prepare(const Napi::CallbackInfo& cb, bool sync) {
    Napi::Env env = cb.Env();
    usable(env);
    const attn::DecoderConfig& c = decoder_->config();
    const I32Span tokens = to_i32_optional(cb[0], "tokens");
    const size_t S = to_size(cb[1], "S"), B = state_.batch(), past = state_.length();
    if (tokens.data == nullptr) throw_type_error(env, "Expected Int32Array for tokens");
    if (S == 0) throw_range_error(env, "Expected S >= 1");
    if (S > state_.max_len() - past) {
      throw_range_error(env, "Expected at most " + std::to_string(state_.max_len() - past) + " new positions but received " +
                                 std::to_string(S));
    }
    const size_t rows = checked_mul(env, B, S, "B*S");
    if (tokens.length != rows) throw_range_error(env, "Expected tokens of length B*S = " + std::to_string(rows));
    for (size_t i = 0; i < rows; ++i) {
      if (tokens.data[i] < 0 || static_cast<size_t>(tokens.data[i]) >= c.vocab) {
        throw_range_error(env, "Expected tokens[" + std::to_string(i) + "] in [0, " + std::to_string(c.vocab) + ") but received " +
                                   std::to_string(tokens.data[i]));
      }
    }
    if (c.rotary_dim == 0 && past + S > c.max_positions) {
      throw_range_error(env, "Expected at most " + std::to_string(c.max_positions) + " positions (maxPositions)");
    }
    StepJob job;
    if (sync) {
      job.step.tokens = tokens.data;
    } else {
      job.tokens.assign(tokens.data, tokens.data + rows);
      job.step.tokens = job.tokens.data();
    }
    job.step.S = S;
    job.step.all_positions = cb[3].ToBoolean();
    const F32Span logits = to_f32(cb[2], "logits");
    check_length(env, "logits", logits.length, checked_mul(env, job.step.all_positions ? rows : B, c.vocab, "logits size"));
    job.step.logits = logits.data;
    if (sync && !cb[5].IsUndefined() && !cb[5].IsNull()) {
      job.step.probs_layer = to_size(cb[4], "probsLayer");
      if (job.step.probs_layer >= c.layers) throw_range_error(env, "Expected probsLayer < " + std::to_string(c.layers));
      const F32Span probs = to_f32(cb[5], "probs");
      check_length(env, "probs", probs.length,
                   checked_mul(env, checked_mul(env, rows, c.hq, "probs size"), past + S, "probs size"));
      job.step.probs = probs.data;
    }
    return job;
  }

  Napi::Value length(const Napi::CallbackInfo& cb) { return Napi::Number::New(cb.Env(), static_cast<double>(state_.length())); }

  Napi::Value step(const Napi::CallbackInfo& cb) {
    const StepJob job = prepare(cb, true);
    const attn::Status status = run(job.step);
    if (status != attn::Status::kOk) throw Napi::Error::New(cb.Env(), attn::status_message(status));
    return cb.Env().Undefined();
  }

  Napi::Value step_async(const Napi::CallbackInfo& cb);

  Napi::Value truncate(const Napi::CallbackInfo& cb) {
    Napi::Env env = cb.Env();
    usable(env);
    const size_t n = to_size(cb[0], "n");
    if (state_.truncate(n) != attn::Status::kOk) {
      throw_range_error(env, "Expected n <= " + std::to_string(state_.length()) + " (the length) but received " + std::to_string(n));
    }
    return env.Undefined();
  }

  Napi::Value dispose(const Napi::CallbackInfo& cb) {
    if (busy_) throw Napi::Error::New(cb.Env(), "The decoder state is in use by a pending stepAsync call; await it before dispose()");
    release(cb.Env());
    return cb.Env().Undefined();
  }

  DecoderWrap* decoder_ = nullptr;
  Napi::ObjectReference decoder_ref_;
  attn::DecoderState state_;
  int64_t bytes_ = 0;
  bool busy_ = false;
};

class StepWorker : public PoolWorker {
 public:
  // The tokens are copied by prepare; the logits must be SharedArrayBuffer-backed (written while JS
  // runs, and a SharedArrayBuffer cannot be detached under the job). The state (marked busy) and
  // the logits are referenced until the job settles; the state references the decoder and its
  // weights.
  StepWorker(Napi::Env env, DecoderStateWrap* state, StepJob job, const Napi::CallbackInfo& cb)
      : PoolWorker(env, "attn:decoderStep"), deferred_(Napi::Promise::Deferred::New(env)), state_(state), job_(std::move(job)) {
    arrays_.require_shared(cb[2], "logits");
    arrays_.keep(cb.This());
    job_.step.tokens = job_.tokens.data();
  }

  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    const attn::Status status = state_->run(job_.step);
    if (status != attn::Status::kOk) SetError(attn::status_message(status));
  }

  void OnOK() override {
    state_->set_busy(false);
    deferred_.Resolve(Env().Undefined());
  }

  void OnError(const Napi::Error& error) override {
    state_->set_busy(false);
    deferred_.Reject(error.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  DecoderStateWrap* state_;
  StepJob job_;
  PoolArrays arrays_;
};

Napi::Value DecoderStateWrap::step_async(const Napi::CallbackInfo& cb) {
  StepJob job = prepare(cb, false);
  auto* worker = new StepWorker(cb.Env(), this, std::move(job), cb);  // throws (before queueing) on an unshared logits
  busy_ = true;
  const Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

}  // namespace

void init_decoder(Napi::Env env, Napi::Object exports) {
  exports.Set("Decoder", DecoderWrap::Define(env));
  exports.Set("DecoderState", DecoderStateWrap::Define(env));
}

}  // namespace attn_binding
