// Backend registry and selection. Both backends implement the same interface on validated
// plans; the facade (lib/ops.ts, lib/attention.ts, ...) validates once and calls current().
import { rangeError, typeError } from './errors';
import { jsBackend } from './js';
import { loadNative, type Binding } from './native';
import { createNativeBackend } from './native-backend';
import type { MatmulPlan } from './validate';
import type { AttentionPlan } from './validate-attention';
import type { BackendInfo, BackendName } from './types';

/** What every backend implements. Arguments are already validated; outputs are preallocated. */
export interface Backend {
  readonly name: BackendName;
  dot(a: Float32Array, b: Float32Array): number;
  matmul(plan: MatmulPlan, a: Float32Array, b: Float32Array, bias: Float32Array | null, out: Float32Array): void;
  /** k/v hold every key (the present buffers when a past was given); y and qkOut are written. */
  attention(plan: AttentionPlan, q: Float32Array, k: Float32Array, v: Float32Array, y: Float32Array, qkOut: Float32Array | null): void;
  /** attention() off the JS thread where the backend can (native: libuv pool). */
  attentionAsync(plan: AttentionPlan, q: Float32Array, k: Float32Array, v: Float32Array, y: Float32Array, qkOut: Float32Array | null): Promise<void>;
}

const loaded = loadNative();
const nativeBinding: Binding | null = loaded.binding;
const nativeBackend: Backend | null = nativeBinding ? createNativeBackend(nativeBinding) : null;

let active: Backend = nativeBackend ?? jsBackend;
let forcedReason: string | null = null;

const requested = process.env.NODE_ATTENTION_BACKEND;
if (requested === 'js') {
  active = jsBackend;
  forcedReason = 'NODE_ATTENTION_BACKEND=js selected the JS backend.';
} else if (requested === 'native') {
  if (!nativeBackend) throw new Error(`NODE_ATTENTION_BACKEND=native was requested but ${loaded.error}`);
} else if (requested !== undefined && requested !== '') {
  throw rangeError('NODE_ATTENTION_BACKEND', "'native' or 'js'", JSON.stringify(requested));
}

/** The backend that serves calls now. */
export function current(): Backend {
  return active;
}

/** The raw addon, or null when it did not load (for modules that hold native objects). */
export function binding(): Binding | null {
  return nativeBinding;
}

/** The name of the backend in use. */
export function getBackend(): BackendName {
  return active.name;
}

/** Switches backends at run time. Throws when asked for native and the addon did not load. */
export function useBackend(name: BackendName): void {
  if (name === 'js') {
    active = jsBackend;
  } else if (name === 'native') {
    if (!nativeBackend) throw new Error(`The native backend is not available. ${loaded.error}`);
    active = nativeBackend;
  } else {
    throw typeError('name', "'native' or 'js'", name);
  }
  forcedReason = null;
}

/** The native backend's availability, the kernels in use and the thread count. */
export function backendInfo(): BackendInfo {
  const native = nativeBinding?.info();
  const onNative = active.name === 'native';
  return {
    backend: active.name,
    nativeLoaded: nativeBinding !== null,
    nativeError: nativeBinding ? (onNative ? null : forcedReason ?? 'useBackend("js") selected the JS backend.') : loaded.error,
    binaryPath: loaded.binaryPath,
    simd: onNative && native ? native.isa : 'js',
    simdSupported: native ? native.isas : [],
    threads: onNative && native ? native.threads : 1,
  };
}

/** Sets the number of threads the native kernels use (default: all CPUs). */
export function setNumThreads(n: number): void {
  if (typeof n !== 'number') throw typeError('n', 'a positive integer', n);
  if (!Number.isInteger(n) || n < 1 || n > 4096) throw rangeError('n', 'an integer in [1, 4096]', String(n));
  nativeBinding?.setNumThreads(n);
}

/** The number of threads the native kernels use (1 when the addon is not loaded). */
export function getNumThreads(): number {
  return nativeBinding ? nativeBinding.info().threads : 1;
}

/**
 * Selects the native kernel set ('avx2' | 'scalar') for comparisons and tests.
 * Returns false, changing nothing, when this CPU cannot run it or the addon is not loaded.
 */
export function setSimd(isa: string): boolean {
  if (typeof isa !== 'string') throw typeError('isa', 'a string', isa);
  return nativeBinding ? nativeBinding.selectIsa(isa) : false;
}
