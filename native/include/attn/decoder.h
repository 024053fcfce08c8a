// A decoder-only transformer's forward step, whole: the step every architecture this package runs
// (GPT-2, the Llama family) is made of, so a decode step is one call (and one pool job) instead of
// a chain of calls orchestrated from JS.
//
//   x = embed(tokens) (+ learned position embeddings)                         (B*S, width)
//   per layer:  h = norm1(x);  qkv = h Wqkv^T + b;  rope(q, k) when rotary;
//               cache <- k, v;  ctx = attention(q, cache) (causal, optional window, pads hidden)
//               x += ctx Wo^T + b;  h = norm2(x);
//               x += down(gelu_tanh(up(h)))  or  x += down(silu(gate(h)) * up(h))
//   logits = norm(x) Whead^T  for each row's last token (or for every token)
//
// Matrices are [out, in] row-major (nn.Linear's layout) in float32, float16 or bfloat16: the
// linear driver converts in registers and reads each weight once per step whatever the batch
// (attn/linear.h). Norm weights and biases are float32. Embedding rows are converted as looked up.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "attn/half.h"
#include "attn/kv_cache.h"
#include "attn/status.h"

namespace attn {

// A weight matrix of `rows` outputs by `cols` inputs.
struct Matrix {
  const void* data = nullptr;
  DType dtype = DType::kF32;
  size_t rows = 0, cols = 0;
};

struct DecoderLinear {
  Matrix w;
  const float* bias = nullptr;  // w.rows values, or null
};

struct DecoderNorm {
  const float* weight = nullptr;
  const float* bias = nullptr;  // LayerNorm's shift; null for RMSNorm
};

enum class NormKind : int { kLayerNorm = 0, kRmsNorm = 1 };
enum class MlpKind : int { kGeluTanh = 0, kSwiglu = 1 };

struct DecoderConfig {
  size_t vocab = 0, width = 0, layers = 0, hq = 0, hkv = 0, head_dim = 0, ffn = 0;
  size_t max_positions = 0;  // rows of the position embedding when learned
  NormKind norm = NormKind::kLayerNorm;
  double eps = 1e-5;
  MlpKind mlp = MlpKind::kGeluTanh;
  size_t rotary_dim = 0;  // > 0: rotary q and k (DecoderWeights::inv_freq); 0: learned positions
  size_t window = 0;      // > 0: a query sees at most the last `window` keys
  float scale = 1.f;
};

struct DecoderLayer {
  DecoderNorm norm1, norm2;
  DecoderLinear qkv;   // [(hq + 2 hkv) * head_dim, width]: the q rows, then k, then v
  DecoderLinear o;     // [width, hq * head_dim]
  DecoderLinear up;    // GELU: [ffn, width]; SwiGLU: [2 ffn, width], the gate rows then the up rows
  DecoderLinear down;  // [width, ffn]
};

struct DecoderWeights {
  Matrix tokens;     // [vocab, width]
  Matrix positions;  // [max_positions, width]; data null for rotary models
  std::vector<DecoderLayer> layers;
  DecoderNorm final_norm;
  Matrix head;                        // [vocab, width] (the token embedding itself when tied)
  const float* inv_freq = nullptr;    // rotary_dim / 2 values when rotary
};

// B sequences decoded together: a KV cache per layer and the step's buffers, which only grow, so
// steady decoding allocates nothing. Row b's first pad[b] positions are left padding: hidden from
// every query, and the row counts its positions from its first real token. The caches hold
// kv_dtype elements (attn/kv_cache.h). One call at a time.
class DecoderState {
 public:
  Status init(const DecoderConfig& config, size_t batch, size_t max_len, const int32_t* pad,
              DType kv_dtype = DType::kF32);
  size_t batch() const { return batch_; }
  size_t max_len() const { return max_len_; }
  size_t length() const { return caches_.empty() ? 0 : caches_[0].length(); }
  DType kv_dtype() const { return caches_.empty() ? DType::kF32 : caches_[0].dtype(); }
  // Bytes of the caches (what is reported to the JS engine).
  size_t bytes() const;
  // Forgets positions from n on (rollback); kBadShape when n > length().
  Status truncate(size_t n);
  void release();

 private:
  friend Status decoder_step(const DecoderConfig&, const DecoderWeights&, DecoderState&, const struct DecoderStep&);
  size_t batch_ = 0, max_len_ = 0;
  bool padded_ = false;
  std::vector<KVCache> caches_;
  std::vector<int32_t> pad_, causal_offset_, positions_;
  std::vector<uint8_t> keep_;
  std::vector<float> x_, h_, qkv_, ctx_, ff_, act_, last_;
};

struct DecoderStep {
  const int32_t* tokens = nullptr;  // B * S ids in [0, vocab), row after row
  size_t S = 0;
  float* logits = nullptr;          // (B, vocab), or (B * S, vocab) with all_positions
  bool all_positions = false;
  // When set, layer probs_layer's attention probabilities, (B, hq, S, length() + S), go here.
  float* probs = nullptr;
  size_t probs_layer = 0;
};

// Preconditions (checked by the binding): the weights match the config (every matrix's rows/cols,
// every pointer covering its extent), hq % hkv == 0, rotary_dim even and <= head_dim, tokens in
// range, length() + S <= max_len and, for learned positions, every position < max_positions.
// The caches' lengths advance only when the whole step has succeeded.
Status decoder_step(const DecoderConfig& config, const DecoderWeights& weights, DecoderState& state,
                    const DecoderStep& step);

}  // namespace attn
