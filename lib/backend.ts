// The seam between the API and its two implementations. The facade (ops.ts, attention.ts, mha.ts,
// kv-cache.ts, models/) validates once and calls the backend; a backend gets validated plans and
// preallocated outputs, and is the only code that knows how the work is done (lib/js/ in
// JavaScript, lib/native/ through the addon). Objects that hold backend state (KV caches, layers)
// are made by the backend active when they are created and keep it for life.
import { availableParallelism } from 'node:os';
import { rangeError, typeError } from './errors';
import { jsBackend } from './js';
import type { Binding } from './native/binding';
import { loaded } from './native/load';
import { createNativeBackend } from './native/backend';
import type { KVCacheConfig, MhaCallPlan, MhaPlan, MhaWeightArrays } from './validate-layers';
import type { MatmulPlan } from './validate';
import type { RopePlan } from './validate-llama-ops';
import type { AttentionPlan, ViewStrides } from './validate-attention';
import type { BackendInfo, BackendName } from './types';
import type { DecoderModel, DecoderSpec } from './models/decoder-spec';

/** What an async attention computes: y, and qkOut when the plan has a qkMode. */
export interface AttentionOutputs {
  y: Float32Array;
  qkOut: Float32Array | null;
}

/** A backend's KV cache storage: [batch, numKVHeads, maxSeqLen, headDim] keys and values. */
export interface KVStore {
  readonly length: number;
  readonly disposed: boolean;
  /** n in [0, length] (checked by the facade). */
  truncate(n: number): void;
  /** Copies positions [0, length) as [batch, numKVHeads, length, headDim]. */
  read(keysOut: Float32Array, valuesOut: Float32Array): void;
  dispose(): void;
}

/** A backend's attention layer (projections, attention over the cache, output projection). */
export interface MhaKernel {
  /** x [B, S, dIn] -> y [B, S, dOut]; with a cache (of the same backend), appends S positions to it. */
  forward(call: MhaCallPlan, x: Float32Array, cache: KVStore | null, y: Float32Array): void;
  /**
   * forward() off the JS thread where the backend can (native: libuv pool), into a y it creates
   * (buffer safety: native/binding/pool_worker.h).
   */
  forwardAsync(call: MhaCallPlan, x: Float32Array, cache: KVStore | null): Promise<Float32Array>;
}

/** What every backend implements. Arguments are already validated; outputs are preallocated. */
export interface Backend {
  readonly name: BackendName;
  dot(a: Float32Array, b: Float32Array): number;
  matmul(plan: MatmulPlan, a: Float32Array, b: Float32Array, bias: Float32Array | null, out: Float32Array): void;
  /** k/v hold every key (the present buffers when a past was given); y and qkOut are written. */
  attention(plan: AttentionPlan, q: Float32Array, k: Float32Array, v: Float32Array, y: Float32Array, qkOut: Float32Array | null): void;
  /**
   * attention() off the JS thread where the backend can (native: libuv pool), into outputs it
   * creates: y, and qkOut when the plan asks for it (buffer safety: native/binding/pool_worker.h).
   */
  attentionAsync(plan: AttentionPlan, q: Float32Array, k: Float32Array, v: Float32Array): Promise<AttentionOutputs>;
  /**
   * ONNX's present key or value: [B, Hkv, past + Skv, d], each head's past rows then its new rows,
   * read from x through the strides of the new keys (4-D or 3-D layout).
   */
  concatPresent(plan: AttentionPlan, past: Float32Array, x: Float32Array, xView: ViewStrides, d: number): Float32Array;
  /** Allocates a cache in full; throws when it cannot (the facade turns that into a RangeError). */
  createKVCache(config: Required<KVCacheConfig>): KVStore;
  /** A layer over weights that no caller can detach (the facade's pinned copies). */
  createMha(plan: MhaPlan, weights: MhaWeightArrays): MhaKernel;
  /** A decoder-only model over the spec's arrays (lib/models/decoder-spec.ts): one call per step. */
  createDecoder(spec: DecoderSpec): DecoderModel;

  // --- Llama-family ops (lib/llama-ops.ts); out never overlaps an input ---
  /** out = x / sqrt(mean(x^2) + eps) * weight per row (HF LlamaRMSNorm). */
  rmsNorm(x: Float32Array, rows: number, width: number, weight: Float32Array, eps: number, out: Float32Array): void;
  /** Rotary embedding of x [B, S, H, D], HF's rotate_half convention, into out. */
  rope(plan: RopePlan, x: Float32Array, positions: Int32Array, out: Float32Array): void;
  /** out = x / (1 + exp(-x)). */
  silu(x: Float32Array, out: Float32Array): void;
  /** out = silu(gate) * up. */
  swiglu(gate: Float32Array, up: Float32Array, out: Float32Array): void;
}

/**
 * The native backend, or why there is none: the addon did not load, or it loaded but was built
 * from other sources than this library (its parameter structs differ: a stale build), which must
 * not take the application down at import either.
 */
function createNative(): { backend: Backend | null; binding: Binding | null; error: string | null } {
  if (!loaded.binding) return { backend: null, binding: null, error: loaded.error };
  try {
    return { backend: createNativeBackend(loaded.binding), binding: loaded.binding, error: null };
  } catch (err) {
    const error = [
      'The node-attention native addon could not be used, so the pure-JS backend is in use.',
      `  - ${loaded.binaryPath}: ${(err as Error).message}`,
      'Possible solutions:',
      '  - Rebuild it: `npm rebuild node-attention` (in a clone of the repository: `npm run build:native`)',
    ].join('\n');
    return { backend: null, binding: null, error };
  }
}

const native = createNative();
const nativeBackend = native.backend;
const nativeBinding = native.binding;
const nativeError = native.error;

let active: Backend = nativeBackend ?? jsBackend;
let forcedReason: string | null = null;
// Whether the first call that uses a backend still has to warn about a JS fallback nobody asked for.
let fallbackUnannounced = nativeBackend === null;

function warnOnce(message: string, code: string): void {
  process.emitWarning(message, { code });
}

/** NODE_ATTENTION_BACKEND, read once at load: any case; a wrong value warns and keeps the default. */
function applyBackendEnv(): void {
  const raw = process.env.NODE_ATTENTION_BACKEND;
  if (raw === undefined || raw.trim() === '') return;
  const requested = raw.trim().toLowerCase();
  if (requested === 'js') {
    active = jsBackend;
    forcedReason = 'NODE_ATTENTION_BACKEND=js selected the JS backend.';
    fallbackUnannounced = false;
  } else if (requested === 'native') {
    if (!nativeBackend) throw new Error(`NODE_ATTENTION_BACKEND=native was requested but ${nativeError}`);
  } else {
    warnOnce(`NODE_ATTENTION_BACKEND=${JSON.stringify(raw)} is not 'native' or 'js' (any case); it is ignored and the ${active.name} backend is in use.`,
      'NODE_ATTENTION_BAD_ENV');
  }
}
applyBackendEnv();

// NODE_ATTENTION_SIMD caps the kernel sets at load (native/core/dispatch.cc); a name the addon does
// not know is ignored there, with every set kept, and reported here.
const simdError = nativeBinding?.info().simdError;
if (simdError) warnOnce(`${simdError}; it is ignored and the best kernel set is in use.`, 'NODE_ATTENTION_BAD_ENV');

/**
 * Tells the user, once, that calls are served by the (5-50x slower) JS backend because the addon
 * did not load, with the reason and the fix. Choosing JS first (NODE_ATTENTION_BACKEND=js or
 * useBackend('js')) silences it.
 */
function announceFallback(): void {
  fallbackUnannounced = false;
  warnOnce(`${nativeError}
Set NODE_ATTENTION_BACKEND=js or call useBackend('js') first to choose the JS backend without this warning.`,
    'NODE_ATTENTION_JS_FALLBACK');
}

/** The backend that serves calls now. */
export function current(): Backend {
  if (fallbackUnannounced) announceFallback();
  return active;
}

/** The backend registered under `name` (for objects that must keep the backend they were made with). */
export function backendNamed(name: BackendName): Backend {
  if (name === 'js') return jsBackend;
  if (!nativeBackend) throw new Error(`The native backend is not available. ${nativeError}`);
  return nativeBackend;
}

/** The name of the backend in use. */
export function getBackend(): BackendName {
  return active.name;
}

/** Switches backends at run time. Throws when asked for native and the addon did not load. */
export function useBackend(name: BackendName): void {
  if (name !== 'js' && name !== 'native') throw typeError('name', "'native' or 'js'", name);
  active = backendNamed(name);
  forcedReason = null;
  if (name === 'js') fallbackUnannounced = false;
}

/** The native backend's availability, the kernels in use and the thread count. */
export function backendInfo(): BackendInfo {
  const binding = nativeBinding;
  const native = binding?.info();
  const onNative = active.name === 'native';
  return {
    backend: active.name,
    nativeLoaded: binding !== null,
    nativeError: binding ? (onNative ? null : forcedReason ?? 'useBackend("js") selected the JS backend.') : nativeError,
    binaryPath: nativeBinding ? loaded.binaryPath : null,
    simd: onNative && native ? native.isa : 'js',
    simdSupported: native ? native.isas : [],
    threads: onNative && native ? native.threads : 1,
    threading: native ? ((native.threading ?? 'openmp') as 'openmp' | 'threads') : null,
  };
}

/**
 * Sets the number of threads the native kernels use (default: all CPUs). More threads than CPUs
 * would only time-slice the same cores, so n is clamped to `os.availableParallelism()`;
 * getNumThreads() reports the count in use.
 */
export function setNumThreads(n: number): void {
  if (typeof n !== 'number') throw typeError('n', 'a positive integer', n);
  if (!Number.isInteger(n) || n < 1 || n > 4096) throw rangeError('n', 'an integer in [1, 4096]', String(n));
  nativeBinding?.setNumThreads(Math.min(n, availableParallelism()));
}

/** The number of threads the native kernels use (1 when the addon is not loaded). */
export function getNumThreads(): number {
  return nativeBinding ? nativeBinding.info().threads : 1;
}

/**
 * Selects the native kernel set ('avx512' | 'avx2' | 'neon' | 'scalar') for comparisons and tests.
 * Returns false, changing nothing, when this CPU cannot run it (or NODE_ATTENTION_SIMD capped it
 * away) or the addon is not loaded.
 */
export function setSimd(isa: string): boolean {
  if (typeof isa !== 'string') throw typeError('isa', 'a string', isa);
  return nativeBinding ? nativeBinding.selectIsa(isa) : false;
}
