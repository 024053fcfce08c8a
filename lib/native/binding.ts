// The whole surface of the native addon, typed once. Nothing outside lib/native/ calls it: the
// native backend (./backend.ts) is the only user, and it passes validated plans only. Every
// function here still re-checks its sizes in C++ (native/binding/), so a wrong call throws rather
// than reading out of bounds. Parameter structs cross as Float64Arrays whose field names the addon
// itself lists in `wire` (native/binding/wire.h); ./wire.ts encodes them by name.

/** Field names of each parameter struct, in index order. */
export interface WireLayout {
  readonly attention: readonly string[];
  readonly mha: readonly string[];
  readonly mask: readonly string[];
  readonly present: readonly string[];
  readonly decoder: readonly string[];
}

export interface NativeInfo {
  /** The kernel set in use. */
  isa: string;
  /** Kernel sets this CPU can run, best first. */
  isas: string[];
  threads: number;
  /** 'openmp' or 'threads' (a build without OpenMP); absent in older builds. */
  threading?: string;
  /** Why NODE_ATTENTION_SIMD was ignored, or null. */
  simdError?: string | null;
}

/** native/binding/kv_cache_wrap.cc: [batch, numKVHeads, maxSeqLen, headDim] keys and values. */
export interface NativeKVCache {
  readonly length: number;
  readonly disposed: boolean;
  reset(): void;
  truncate(n: number): void;
  /** Copies positions [0, length) as float32 [batch, numKVHeads, length, headDim]. */
  read(keysOut: Float32Array, valuesOut: Float32Array): void;
  dispose(): void;
}

type Mask = Float32Array | Uint8Array | null;

/** native/binding/mha_binding.cc: one attention layer, projections included, in one call. */
export interface NativeMha {
  /** positionOffsets: B values >= 0 subtracted from each row's rotary positions, or null. */
  forward(x: Float32Array, B: number, S: number, cache: NativeKVCache | null, mask: Mask,
    maskStrides: Float64Array | null, y: Float32Array, positionOffsets: Int32Array | null): void;
  /** Computes into a y it creates (native/binding/pool_worker.h), resolved when done. */
  forwardAsync(x: Float32Array, B: number, S: number, cache: NativeKVCache | null, mask: Mask,
    maskStrides: Float64Array | null, positionOffsets: Int32Array | null): Promise<Float32Array>;
}

/** native/binding/decoder_binding.cc: a decoder-only model over weight arrays JS owns. */
export type NativeDecoder = object;

/** B sequences decoded together on a NativeDecoder: a KV cache per layer. */
export interface NativeDecoderState {
  readonly length: number;
  step(tokens: Int32Array, S: number, logits: Float32Array, allPositions: boolean, probsLayer?: number, probs?: Float32Array): void;
  /** The same on the libuv pool; logits must be SharedArrayBuffer-backed. */
  stepAsync(tokens: Int32Array, S: number, logits: Float32Array, allPositions: boolean): Promise<void>;
  truncate(n: number): void;
  dispose(): void;
}

export interface Binding {
  readonly wire: WireLayout;
  info(): NativeInfo;
  setNumThreads(n: number): void;
  selectIsa(isa: string): boolean;

  // native/binding/matmul_binding.cc
  dot(a: Float32Array, b: Float32Array): number;
  /** batch: [batchDims, aBatchStrides, bBatchStrides] of r leading dims each, or undefined. */
  matmul(a: Float32Array, b: Float32Array, bias: Float32Array | null, out: Float32Array,
    m: number, k: number, n: number, transA: boolean, transB: boolean, batch?: Float64Array): void;

  // native/binding/attention_binding.cc; params is the `wire.attention` struct.
  attention(q: Float32Array, k: Float32Array, v: Float32Array, y: Float32Array, mask: Mask,
    kvValid: Int32Array | null, causalOffset: Int32Array | null, qkOut: Float32Array | null, params: Float64Array): void;
  /** Computes into a y (and a qkOut when params.qkMode >= 0) it creates, resolved when done. */
  attentionAsync(q: Float32Array, k: Float32Array, v: Float32Array, mask: Mask, kvValid: Int32Array | null,
    causalOffset: Int32Array | null, params: Float64Array): Promise<{ y: Float32Array; qkOut: Float32Array | null }>;

  // native/binding/present_binding.cc; params is the `wire.present` struct. The result is
  // [B, H, P + S, d] in memory recycled when V8 collects it.
  concatPresent(past: Float32Array, x: Float32Array, params: Float64Array): Float32Array;

  // native/binding/llama_ops_binding.cc: x and out row-major, out never overlapping an input.
  /** out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight for rows of `width`. */
  rmsNorm(x: Float32Array, weight: Float32Array, out: Float32Array, rows: number, width: number, eps: number): void;
  /** x, out [B, S, H, D]; positions of length B*S or S (shared); invFreq of length rotaryDim / 2. */
  rope(x: Float32Array, positions: Int32Array, invFreq: Float32Array, out: Float32Array, B: number, S: number, H: number,
    D: number, rotaryDim: number): void;
  silu(x: Float32Array, out: Float32Array): void;
  swiglu(gate: Float32Array, up: Float32Array, out: Float32Array): void;

  /** dtype: attn::DType, 0 F32 (default), 1 F16, 2 BF16. */
  KVCache: new (batch: number, numKVHeads: number, headDim: number, maxSeqLen: number, dtype?: number) => NativeKVCache;
  /**
   * params is the `wire.mha` struct; absent weights are null. invFreq: the rope inverse
   * frequencies (rotaryDim / 2 of them, copied at construction) when params.rotaryDim > 0, else null.
   */
  MultiHeadAttention: new (params: Float64Array, wq: Float32Array, wk: Float32Array, wv: Float32Array,
    wo: Float32Array | null, bq: Float32Array | null, bk: Float32Array | null, bv: Float32Array | null,
    bo: Float32Array | null, invFreq: Float32Array | null) => NativeMha;

  /**
   * params is the `wire.decoder` struct; weights the arrays in the order decoder_binding.cc lists
   * (null where absent), every one SharedArrayBuffer-backed.
   */
  Decoder: new (params: Float64Array, weights: ReadonlyArray<Float32Array | Uint16Array | null>) => NativeDecoder;
  /** pad: B left-pad counts, or null. */
  /** kvDtype: the caches' attn::DType, 0 F32 (default), 1 F16, 2 BF16. */
  DecoderState: new (decoder: NativeDecoder, B: number, maxLen: number, pad: Int32Array | null, kvDtype?: number) => NativeDecoderState;

  // Diagnostics (underscore: not re-exported by the package). Each bounds its own work.
  /** x <- exp(x - max) with the active kernel set; returns the sum. */
  _vecExpsum(x: Float32Array, max: number): number;
  /** FMA peak: threads in [1, CPU count], seconds per trial in [0.001, 1]. */
  _probePeak(threads: number, seconds: number): { gflops: number; kernel: string; threads: number };
  /** Read bandwidth: threads in [1, CPU count], bytes in [1 MiB, 4 GiB]. */
  _probeBandwidth(threads: number, bytes: number): { gbps: number; bytes: number; threads: number };
}
