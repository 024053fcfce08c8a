// KVCache: the keys and values of past positions for incremental decoding with MultiHeadAttention.
// The storage is made by the backend active when the cache is created (lib/backend.ts KVStore):
// with the native backend one native allocation (counted by V8 as external memory, freed by
// dispose() or by garbage collection), with the JS backend two Float32Arrays (Uint16Arrays for a
// half-precision cache).
import { current, type Backend, type KVStore } from './backend';
import { rangeError } from './errors';
import type { WeightDtype } from './models/decoder-spec';
import type { BackendName, Tensor } from './types';
import { checkTruncate, disposedError, validateKVCacheConfig, type CacheState, type KVCacheConfig } from './validate-layers';

let storeOf: (cache: KVCache) => KVStore;
// Set only while createKVCacheOn constructs a cache, so the public constructor keeps one argument.
let ownerOverride: Backend | null = null;

/**
 * Allocates the cache in full. Running out of memory is the caller's sizing problem, so it is
 * reported as a RangeError on config (with the size asked for) on both backends alike, instead of
 * the engine's "Invalid typed array length" or the addon's allocation error.
 */
function allocate(backend: Backend, c: Required<KVCacheConfig>): KVStore {
  try {
    return backend.createKVCache(c);
  } catch (cause) {
    const elements = c.batch * c.numKVHeads * c.headDim * c.maxSeqLen;
    const gib = (2 * elements * (c.dtype === 'F32' ? 4 : 2)) / 2 ** 30;
    throw Object.assign(
      rangeError('config', 'a cache small enough to allocate', `${c.batch} * ${c.numKVHeads} * ${c.headDim} * ${c.maxSeqLen} ${c.dtype} elements each for keys and values (${gib.toPrecision(3)} GiB)`),
      { cause },
    );
  }
}

/**
 * A preallocated key/value cache for one attention layer: `[batch, numKVHeads, maxSeqLen, headDim]`
 * keys and values, of which the first `length` positions are filled. Pass it to
 * `MultiHeadAttention.forward(x, { cache })`, which appends x's keys/values and attends to every
 * cached position. It belongs to the backend active when it was created and only works with
 * layers of that backend.
 *
 * `dtype: 'F16'` or `'BF16'` stores each key and value rounded to 16 bits (nearest even): half the
 * memory, and long-context decode, which is bound by reading the cache, takes about half the time.
 * Attention reads the 16-bit values directly, widening them exactly, so the storage rounding is
 * the only difference from an F32 cache (see the README's "A cache in half precision" for the
 * measured difference).
 * @example
 * const cache = new KVCache({ batch: 1, numKVHeads: 12, headDim: 64, maxSeqLen: 1024 });
 * layer.forward(prompt, { cache });        // prefill: cache.length = prompt length
 * layer.forward(nextToken, { cache });     // one decode step: cache.length + 1
 * cache.truncate(cache.length - 1);        // roll the last step back
 */
export class KVCache {
  readonly batch: number;
  readonly numKVHeads: number;
  readonly headDim: number;
  readonly maxSeqLen: number;
  /** The element type keys and values are stored in. */
  readonly dtype: WeightDtype;
  /** The backend this cache was created with. */
  readonly backend: BackendName;
  readonly #store: KVStore;

  static {
    storeOf = (cache) => cache.#store;
  }

  /**
   * @param config batch, numKVHeads, headDim and maxSeqLen, each a positive integer
   *   (maxSeqLen <= 2^31 - 1), and dtype ('F32' default, 'F16', 'BF16'). The storage is
   *   allocated now, in full.
   */
  constructor(config: KVCacheConfig) {
    const c = validateKVCacheConfig(config);
    const owner = ownerOverride ?? current();
    this.batch = c.batch;
    this.numKVHeads = c.numKVHeads;
    this.headDim = c.headDim;
    this.maxSeqLen = c.maxSeqLen;
    this.dtype = c.dtype;
    this.backend = owner.name;
    this.#store = allocate(owner, c);
  }

  /** Positions held (read-only); appends grow it, truncate() and reset() shrink it. */
  get length(): number {
    return this.#store.length;
  }

  /** True after dispose(); every other method then throws. */
  get disposed(): boolean {
    return this.#store.disposed;
  }

  /** Empties the cache (length 0), keeping its storage. */
  reset(): void {
    this.truncate(0);
  }

  /**
   * Keeps the first n positions: the rollback for speculative decoding or a rejected continuation.
   * @param n an integer in [0, length]
   */
  truncate(n: number): void {
    if (this.disposed) throw disposedError();
    this.#store.truncate(checkTruncate(n, this.length));
  }

  /** Copies of the cached keys and values as float32 (16-bit ones widened exactly), each `[batch, numKVHeads, length, headDim]`. */
  snapshot(): { key: Tensor; value: Tensor } {
    if (this.disposed) throw disposedError();
    const dims = [this.batch, this.numKVHeads, this.length, this.headDim];
    const keys = new Float32Array(dims[0] * dims[1] * dims[2] * dims[3]);
    const values = new Float32Array(keys.length);
    this.#store.read(keys, values);
    return { key: { data: keys, dims }, value: { data: values, dims: [...dims] } };
  }

  /**
   * Frees the storage now instead of at garbage collection. Idempotent; any later use throws.
   * Throws while a forwardAsync call that uses this cache is pending.
   */
  dispose(): void {
    this.#store.dispose();
  }
}

/** The storage behind a cache, for MultiHeadAttention. Not part of the public API. */
export function cacheStore(cache: KVCache): KVStore {
  return storeOf(cache);
}

/** A cache on a given backend (a model makes its caches on its own backend, whatever is active). */
export function createKVCacheOn(backend: Backend, config: KVCacheConfig): KVCache {
  ownerOverride = backend;
  try {
    return new KVCache(config);
  } finally {
    ownerOverride = null;
  }
}

/** What validation needs to know about a cache. */
export function cacheState(cache: KVCache): CacheState {
  return {
    backend: cache.backend, disposed: cache.disposed, batch: cache.batch, numKVHeads: cache.numKVHeads,
    headDim: cache.headDim, maxSeqLen: cache.maxSeqLen, length: cache.length,
  };
}
