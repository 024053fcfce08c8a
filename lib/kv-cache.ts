// KVCache: the keys and values of past positions for incremental decoding with MultiHeadAttention.
// With the native backend the storage is one native allocation (counted by V8 as external memory,
// freed by dispose() or by garbage collection); with the JS backend it is two Float32Arrays.
import { binding, current } from './backend';
import { rangeError } from './errors';
import { JsKVStore } from './js/kv-cache';
import type { BackendName, Tensor } from './types';
import { checkTruncate, disposedError, validateKVCacheConfig, type CacheState, type KVCacheConfig } from './validate-layers';

/** The addon's KVCache object (native/binding/kv_cache_wrap.cc). */
export interface NativeKVCache {
  readonly length: number;
  readonly disposed: boolean;
  reset(): void;
  truncate(n: number): void;
  read(keysOut: Float32Array, valuesOut: Float32Array): void;
  dispose(): void;
}
type NativeKVCacheClass = new (batch: number, numKVHeads: number, headDim: number, maxSeqLen: number) => NativeKVCache;

/** The storage behind a KVCache: exactly one of the two is set. */
export interface CacheStorage {
  readonly native: NativeKVCache | null;
  readonly js: JsKVStore | null;
}

let storageOf: (cache: KVCache) => CacheStorage;

/**
 * Allocates the cache in full. Running out of memory is the caller's sizing problem, so it is
 * reported as a RangeError on config (with the size asked for) on both backends alike, instead of
 * the engine's "Invalid typed array length" or the addon's allocation error.
 */
function allocateStorage(backend: BackendName, c: KVCacheConfig): CacheStorage {
  try {
    if (backend === 'native') {
      const NativeClass = binding()!.KVCache as NativeKVCacheClass;
      return { native: new NativeClass(c.batch, c.numKVHeads, c.headDim, c.maxSeqLen), js: null };
    }
    return { native: null, js: new JsKVStore(c.batch, c.numKVHeads, c.headDim, c.maxSeqLen) };
  } catch (cause) {
    const floats = c.batch * c.numKVHeads * c.headDim * c.maxSeqLen;
    const gib = (2 * floats * 4) / 2 ** 30;
    throw Object.assign(
      rangeError('config', 'a cache small enough to allocate', `${c.batch} * ${c.numKVHeads} * ${c.headDim} * ${c.maxSeqLen} floats each for keys and values (${gib.toPrecision(3)} GiB)`),
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
  /** The backend this cache was created with. */
  readonly backend: BackendName;
  readonly #storage: CacheStorage;

  static {
    storageOf = (cache) => cache.#storage;
  }

  /**
   * @param config batch, numKVHeads, headDim and maxSeqLen, each a positive integer
   *   (maxSeqLen <= 2^31 - 1). The storage is allocated now, in full.
   */
  constructor(config: KVCacheConfig) {
    const c = validateKVCacheConfig(config);
    this.batch = c.batch;
    this.numKVHeads = c.numKVHeads;
    this.headDim = c.headDim;
    this.maxSeqLen = c.maxSeqLen;
    this.backend = current().name;
    this.#storage = allocateStorage(this.backend, c);
  }

  /** Positions held (read-only); appends grow it, truncate() and reset() shrink it. */
  get length(): number {
    const { native, js } = this.#storage;
    return native ? native.length : js!.length;
  }

  /** True after dispose(); every other method then throws. */
  get disposed(): boolean {
    const { native, js } = this.#storage;
    return native ? native.disposed : js!.disposed;
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
    const { native, js } = this.#storage;
    if (this.disposed) throw disposedError();
    const keep = checkTruncate(n, this.length);
    if (native) native.truncate(keep);
    else js!.length = keep;
  }

  /** Copies of the cached keys and values, each `[batch, numKVHeads, length, headDim]`. */
  snapshot(): { key: Tensor; value: Tensor } {
    const { native, js } = this.#storage;
    if (this.disposed) throw disposedError();
    const dims = [this.batch, this.numKVHeads, this.length, this.headDim];
    let keys: Float32Array, values: Float32Array;
    if (native) {
      keys = new Float32Array(dims[0] * dims[1] * dims[2] * dims[3]);
      values = new Float32Array(keys.length);
      native.read(keys, values);
    } else {
      ({ keys, values } = js!.read());
    }
    return { key: { data: keys, dims }, value: { data: values, dims: [...dims] } };
  }

  /**
   * Frees the storage now instead of at garbage collection. Idempotent; any later use throws.
   * Throws while a forwardAsync call that uses this cache is pending.
   */
  dispose(): void {
    const { native, js } = this.#storage;
    if (native) native.dispose();
    else js!.dispose();
  }
}

/** The storage behind a cache, for MultiHeadAttention. Not part of the public API. */
export function cacheStorage(cache: KVCache): CacheStorage {
  return storageOf(cache);
}

/** What validation needs to know about a cache. */
export function cacheState(cache: KVCache): CacheState {
  return {
    backend: cache.backend, disposed: cache.disposed, batch: cache.batch, numKVHeads: cache.numKVHeads,
    headDim: cache.headDim, maxSeqLen: cache.maxSeqLen, length: cache.length,
  };
}
