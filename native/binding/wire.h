// The parameter structs that cross N-API as one Float64Array each. Every field is named once,
// here (an X-macro gives both the index enum the decoders use and the name list the addon exports
// as `binding.wire`); lib/native/wire.ts builds its encoders from that list by name, so the JS
// and C++ sides cannot disagree on an index.
#pragma once
#include <cstddef>

namespace attn_binding {

// attention(): sizes, element strides of the (b, h, t, d) views, the mask view, the scalars.
#define ATTN_WIRE_ATTENTION(X)                                                                       \
  X(B) X(Hq) X(Hkv) X(Sq) X(Skv) X(D) X(Dv) X(qSb) X(qSh) X(qSt) X(kSb) X(kSh) X(kSt) X(vSb) X(vSh) \
  X(vSt) X(ySb) X(ySh) X(ySt) X(maskSb) X(maskSh) X(maskSq) X(maskLen) X(scale) X(softcap)         \
  X(causal) X(qkMode)

// new MultiHeadAttention(): the layer's sizes and options.
// rotaryDim: the dims of each q/k head the rope op rotates (0: no rotary embedding).
#define ATTN_WIRE_MHA(X) X(dIn) X(dOut) X(numHeads) X(numKVHeads) X(headDim) X(causal) X(scale) X(rotaryDim)

// concatPresent(): sizes, and the element strides of the new rows' (b, h, s, e) view.
#define ATTN_WIRE_PRESENT(X) X(B) X(H) X(P) X(S) X(d) X(xSb) X(xSh) X(xSt)

// MultiHeadAttention.forward(): the mask view over (B, numHeads, S, maskLen).
#define ATTN_WIRE_MASK(X) X(maskSb) X(maskSh) X(maskSq) X(maskLen)

// new Decoder(): a decoder-only model's sizes and block kinds (attn/decoder.h). norm: 0 LayerNorm,
// 1 RMSNorm; mlp: 0 GELU (tanh), 1 SwiGLU; dtype of every weight matrix: 0 F32, 1 F16, 2 BF16;
// rotaryDim 0: learned positions; window 0: none; tied: the head is the token embedding.
#define ATTN_WIRE_DECODER(X)                                                                       \
  X(vocab) X(width) X(layers) X(numHeads) X(numKVHeads) X(headDim) X(ffn) X(maxPositions) X(norm) \
  X(eps) X(mlp) X(rotaryDim) X(window) X(scale) X(dtype) X(tied)

#define ATTN_WIRE_ENUM(name) name,
#define ATTN_WIRE_NAME(name) #name,

namespace wire {
namespace attention {
enum Field : size_t { ATTN_WIRE_ATTENTION(ATTN_WIRE_ENUM) kCount };
}
namespace mha {
enum Field : size_t { ATTN_WIRE_MHA(ATTN_WIRE_ENUM) kCount };
}
namespace mask {
enum Field : size_t { ATTN_WIRE_MASK(ATTN_WIRE_ENUM) kCount };
}
namespace present {
enum Field : size_t { ATTN_WIRE_PRESENT(ATTN_WIRE_ENUM) kCount };
}
namespace decoder {
enum Field : size_t { ATTN_WIRE_DECODER(ATTN_WIRE_ENUM) kCount };
}
}  // namespace wire

}  // namespace attn_binding
