// LatentKVCache: what Multi-head Latent Attention keeps of past tokens. Per token one row
// [c_kv (kvLoraRank) | k_pe (ropeDim)]: the normalised latent and the rotated key all heads share,
// nothing per head. The rows are one preallocated Float32Array [batch, maxSeqLen, kvLoraRank +
// ropeDim] that the attention reads in place on either backend (keys: whole rows; values: the first
// kvLoraRank floats of the same rows), so the cache holds no backend state and works with layers
// of both.
import { rangeError } from './errors';
import { checkTruncate } from './validate-layers';
import { latentDisposedError, validateLatentCacheConfig, type LatentCacheState, type LatentKVCacheConfig } from './validate-mla';

/** The rows and the setter of the length, for MultiHeadLatentAttention. Not part of the public API. */
export interface LatentRows {
  readonly data: Float32Array;
  setLength(n: number): void;
}

let rowsOf: (cache: LatentKVCache) => LatentRows;

/**
 * A latent key/value cache for one MultiHeadLatentAttention layer: `[batch, maxSeqLen, kvLoraRank +
 * ropeDim]` floats, of which the first `length` tokens are filled, allocated in full at
 * construction. For DeepSeek-V2's shapes (kv_lora_rank 512, qk_rope_head_dim 64, 128 heads of
 * 128 + 64 key and 128 value dims) a token costs 576 floats instead of 128 * (192 + 128) = 40960.
 * @example
 * const cache = new LatentKVCache({ batch: 1, kvLoraRank: 512, ropeDim: 64, maxSeqLen: 4096 });
 * layer.forward(prompt, { cache });        // prefill: cache.length = prompt length
 * layer.forward(nextToken, { cache });     // one decode step: cache.length + 1
 * cache.truncate(cache.length - 1);        // roll the last step back
 */
export class LatentKVCache {
  readonly batch: number;
  readonly kvLoraRank: number;
  readonly ropeDim: number;
  readonly maxSeqLen: number;
  #data: Float32Array;
  #length = 0;
  #disposed = false;

  static {
    rowsOf = (cache) => ({ data: cache.#data, setLength: (n) => { cache.#length = n; } });
  }

  /**
   * @param config batch, kvLoraRank (the layer's kv_lora_rank), ropeDim (its qk_rope_head_dim) and
   *   maxSeqLen, each a positive integer (maxSeqLen <= 2^31 - 1). The storage is allocated now, in full.
   */
  constructor(config: LatentKVCacheConfig) {
    const c = validateLatentCacheConfig(config);
    this.batch = c.batch;
    this.kvLoraRank = c.kvLoraRank;
    this.ropeDim = c.ropeDim;
    this.maxSeqLen = c.maxSeqLen;
    const floats = c.batch * c.maxSeqLen * (c.kvLoraRank + c.ropeDim);
    try {
      this.#data = new Float32Array(floats);
    } catch (cause) {
      // Running out of memory is the caller's sizing problem: a RangeError on config with the size asked for.
      throw Object.assign(rangeError('config', 'a cache small enough to allocate',
        `${c.batch} * ${c.maxSeqLen} * (${c.kvLoraRank} + ${c.ropeDim}) floats (${((floats * 4) / 2 ** 30).toPrecision(3)} GiB)`), { cause });
    }
  }

  /** Tokens held (read-only); forward() grows it, truncate() and reset() shrink it. */
  get length(): number {
    return this.#length;
  }

  /** Bytes held for keys and values: batch * maxSeqLen * (kvLoraRank + ropeDim) * 4 (0 after dispose()). */
  get byteLength(): number {
    return this.#data.byteLength;
  }

  /** True after dispose(); every other method then throws. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /** Empties the cache (length 0), keeping its storage. */
  reset(): void {
    this.truncate(0);
  }

  /**
   * Keeps the first n tokens: the rollback for speculative decoding or a rejected continuation.
   * @param n an integer in [0, length]
   */
  truncate(n: number): void {
    if (this.#disposed) throw latentDisposedError();
    this.#length = checkTruncate(n, this.#length);
  }

  /** Lets go of the storage (the garbage collector can free it while the cache object lives on). Idempotent; any later use throws. */
  dispose(): void {
    this.#disposed = true;
    this.#length = 0;
    this.#data = new Float32Array(0);
  }
}

/** The cache's rows, for the layer that appends to and reads them (after validateMlaForward checked the cache). */
export function latentRows(cache: LatentKVCache): LatentRows {
  return rowsOf(cache);
}

/** What validation needs to know about a cache. */
export function latentCacheState(cache: LatentKVCache): LatentCacheState {
  return {
    disposed: cache.disposed, batch: cache.batch, kvLoraRank: cache.kvLoraRank, ropeDim: cache.ropeDim,
    maxSeqLen: cache.maxSeqLen, length: cache.length,
  };
}
