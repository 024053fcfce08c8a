// What a decoder-only model is made of, for a backend to run (Backend.createDecoder): the block
// kinds (LayerNorm or RMSNorm, GELU or SwiGLU MLP, learned or rotary positions, an optional sliding
// window) and the weights, one array each, never copied. Linear weights are [out, in] (nn.Linear)
// in the precision of the file: Float32Array for F32, Uint16Array of the bits for F16 and BF16,
// converted to float32 inside the backends' loops. A decode step is one backend call:
//
//   x = tokens[ids] (+ positions[pos])
//   per layer: h = norm1(x); [q | k | v] = h qkv^T + b; rope(q, k); cache <- k, v
//              x += attention(q, cache) o^T + b; h = norm2(x)
//              x += down(gelu_tanh(up(h)))   or   x += down(silu(gate(h)) * up(h)), up = [gate | up] rows
//   logits = finalNorm(x) head^T (head: the token embedding when tied)
//
// The whole spec crosses to the native backend once, at creation; the arrays must be
// SharedArrayBuffer-backed (pool jobs read them while JS runs; lib/pinned.ts).

export type WeightDtype = 'F32' | 'F16' | 'BF16';

/** A weight matrix of `rows` outputs by `cols` inputs, row-major. */
export interface Matrix {
  readonly data: Float32Array | Uint16Array;
  readonly dtype: WeightDtype;
  readonly rows: number;
  readonly cols: number;
}

export interface LinearSpec {
  readonly w: Matrix;
  /** w.rows values, or null. */
  readonly bias: Float32Array | null;
}

export interface NormSpec {
  readonly weight: Float32Array;
  /** LayerNorm's shift; null for RMSNorm. */
  readonly bias: Float32Array | null;
}

export interface DecoderLayerSpec {
  readonly norm1: NormSpec;
  /** [(numHeads + 2 numKVHeads) headDim, width]: the q rows, then k, then v. */
  readonly qkv: LinearSpec;
  /** [width, numHeads headDim]. */
  readonly o: LinearSpec;
  readonly norm2: NormSpec;
  /** GELU: [ffn, width]; SwiGLU: [2 ffn, width], the gate rows then the up rows. */
  readonly up: LinearSpec;
  /** [width, ffn]. */
  readonly down: LinearSpec;
}

export interface DecoderSpec {
  readonly vocab: number;
  readonly width: number;
  readonly numHeads: number;
  readonly numKVHeads: number;
  readonly headDim: number;
  readonly ffn: number;
  readonly norm: 'layer' | 'rms';
  readonly eps: number;
  readonly mlp: 'gelu' | 'swiglu';
  readonly scale: number;
  /** A query sees at most the last `window` keys; 0: no window. */
  readonly window: number;
  /** The dtype of every Matrix. */
  readonly dtype: WeightDtype;
  /** [vocab, width]. */
  readonly tokens: Matrix;
  /** Learned positions [maxPositions, width], or null for a rotary model. */
  readonly positions: Matrix | null;
  /** Rotary models: the dims of each q/k head rotated, and rotaryDim / 2 inverse frequencies. */
  readonly rope: { readonly rotaryDim: number; readonly invFreq: Float32Array } | null;
  readonly layers: readonly DecoderLayerSpec[];
  readonly finalNorm: NormSpec;
  /** [vocab, width], or null when tied to `tokens`. */
  readonly head: Matrix | null;
}

/**
 * B sequences decoded together: a KV cache per layer, room for maxLen positions. Row b's first
 * pad[b] positions are left padding, hidden from every query, the row's positions counted from its
 * first real token. One call at a time.
 */
export interface DecoderState {
  readonly length: number;
  /**
   * Feeds S tokens per row (tokens: B*S, row after row) and writes the logits of each row's last
   * token, (B, vocab), or with allPositions of every token, (B*S, vocab); with `probs`, layer
   * probs.layer's attention probabilities, (B, numHeads, S, length + S), into probs.out.
   */
  step(tokens: Int32Array, S: number, logits: Float32Array, allPositions: boolean, probs?: { layer: number; out: Float32Array }): void;
  /** step on the libuv pool (native) or the calling thread (JS); logits SharedArrayBuffer-backed. */
  stepAsync(tokens: Int32Array, S: number, logits: Float32Array, allPositions: boolean): Promise<void>;
  truncate(n: number): void;
  dispose(): void;
}

/** A model made by a backend; its states share its weights. */
export interface DecoderModel {
  /** kvDtype: the element type of the state's KV caches. */
  state(B: number, maxLen: number, pad: Int32Array | null, kvDtype: WeightDtype): DecoderState;
}
