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
  /** The kernel set in use: 'avx2' | 'scalar', or 'js'. */
  simd: string;
  /** Kernel sets this CPU can run, best first (native only). */
  simdSupported: string[];
  /** Threads the native kernels use (1 for the JS backend). */
  threads: number;
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
