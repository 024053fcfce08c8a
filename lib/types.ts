/** A dense row-major float32 tensor. Any object of this shape is accepted (an onnxruntime Tensor, say). */
export interface Tensor {
  readonly data: Float32Array;
  readonly dims: readonly number[];
}

export type BackendName = 'native' | 'js';

export interface BackendInfo {
  /** The backend that serves calls now. */
  backend: BackendName;
  /** Whether the native addon loaded. */
  nativeLoaded: boolean;
  /** Why native is not in use (load failure and what to do about it), or null. */
  nativeError: string | null;
  /** The addon file that loaded, or null. */
  binaryPath: string | null;
  /** The kernel set in use: 'avx512' | 'avx2' | 'neon' | 'scalar', or 'js'. */
  simd: string;
  /** Kernel sets this CPU can run, best first, as capped by NODE_ATTENTION_SIMD (native only). */
  simdSupported: string[];
  /** Threads the native kernels use (1 for the JS backend). */
  threads: number;
  /** What the native kernels' parallel loops run on: 'openmp', or 'threads' (a build without OpenMP); null without the addon. */
  threading: 'openmp' | 'threads' | null;
}

export interface MatmulOptions {
  /** Swap the last two dims of `a`. */
  transA?: boolean;
  /** Swap the last two dims of `b`. */
  transB?: boolean;
  /** 1-D, added along the last output dim. */
  bias?: Float32Array | Tensor;
  /** A Float32Array of exactly the output's length to write into; returned as the result's data. */
  out?: Float32Array;
}

/** An ONNX `attn_mask`: a Uint8Array is boolean (nonzero = may attend), a Float32Array is added to the scores. */
export interface AttentionMask {
  readonly data: Float32Array | Uint8Array;
  readonly dims: readonly number[];
}

/** The ONNX `qk_matmul_output_mode`: 0 scaled QK^T, 1 after softcap, 2 after the mask/bias, 3 softmax. */
export type QkMatmulOutputMode = 0 | 1 | 2 | 3;

/**
 * Options of `attention()`: the inputs and attributes of ONNX `Attention` (opset 23/24) in camelCase.
 * Every field is optional; unknown names are rejected.
 */
export interface AttentionOptions {
  /**
   * Broadcasts (right-aligned) to [B, qNumHeads, Sq, total]; rank 1 to 4. Its last dim may be shorter
   * than total (opset 24): the missing keys are masked (-inf / false).
   */
  attnMask?: AttentionMask;
  /** Cached keys, 4-D [B, kvNumHeads, past, D] even for 3-D q/k/v. Requires `pastValue`. */
  pastKey?: Tensor;
  /** Cached values, 4-D [B, kvNumHeads, past, Dv]. Requires `pastKey`. */
  pastValue?: Tensor;
  /** Valid keys per batch entry (opset 24), each in [0, total]; keys at or after it are masked. */
  nonpadKvSeqlen?: Int32Array | BigInt64Array;
  /** Query i sees key j iff j <= i + offset (offset = past, else nonpad[b] - Sq, else 0). Default false. */
  isCausal?: boolean;
  /** Multiplies Q K^T. Default 1 / sqrt(D). */
  scale?: number;
  /** Scores become softcap * tanh(score / softcap) before the mask is added. 0 (default) = none. */
  softcap?: number;
  /** Query heads: required for 3-D inputs, checked against the dims for 4-D ones. */
  qNumHeads?: number;
  /** Key/value heads: required for 3-D inputs, checked against the dims for 4-D ones. */
  kvNumHeads?: number;
  /** When given, the result carries `qkMatmulOutput` at this stage. */
  qkMatmulOutputMode?: QkMatmulOutputMode;
}

/** What `attention()` returns. */
export interface AttentionResult {
  /** [B, qNumHeads, Sq, Dv] for 4-D inputs, [B, Sq, qNumHeads * Dv] for 3-D ones. */
  y: Tensor;
  /** [B, kvNumHeads, past + Skv, D]: past then the new keys. Present whenever `pastKey` was given. */
  presentKey?: Tensor;
  /** [B, kvNumHeads, past + Skv, Dv]. Present whenever `pastValue` was given. */
  presentValue?: Tensor;
  /** [B, qNumHeads, Sq, past + Skv]. Present whenever `qkMatmulOutputMode` was given. */
  qkMatmulOutput?: Tensor;
}
