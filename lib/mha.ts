// MultiHeadAttention: one attention layer with its projections (MHA, GQA, MQA), optionally decoding
// through a KVCache. With the native backend the whole layer runs in one addon call; with the JS
// backend it runs the JS GEMM and attention kernels.
import { binding, current } from './backend';
import { mhaForward } from './js/mha';
import { cacheState, cacheStorage, KVCache, type NativeKVCache } from './kv-cache';
import { typeError } from './errors';
import type { AttentionMask, BackendName, Tensor } from './types';
import {
  validateMha, validateMhaForward,
  type MhaCallPlan, type MhaPlan, type MhaWeightArrays, type MultiHeadAttentionConfig, type MultiHeadAttentionWeights,
} from './validate-layers';

/** Options of `forward` / `forwardAsync`. */
export interface MultiHeadAttentionForwardOptions {
  /** Appends x's keys/values and attends to every cached position plus the new ones. */
  cache?: KVCache;
  /** Broadcasts (right-aligned, ONNX rules) to [B, numHeads, S, cache length + S]; see attention(). */
  attnMask?: AttentionMask;
}

/** The addon's layer object (native/binding/mha_binding.cc). */
interface NativeMha {
  forward(x: Float32Array, B: number, S: number, cache: NativeKVCache | null, mask: Float32Array | Uint8Array | null,
    maskStrides: Float64Array | null, y: Float32Array): void;
  forwardAsync(x: Float32Array, B: number, S: number, cache: NativeKVCache | null, mask: Float32Array | Uint8Array | null,
    maskStrides: Float64Array | null, y: Float32Array): Promise<void>;
}
type NativeMhaClass = new (params: Float64Array, wq: Float32Array, wk: Float32Array, wv: Float32Array,
  wo: Float32Array | null, bq: Float32Array | null, bk: Float32Array | null, bv: Float32Array | null,
  bo: Float32Array | null) => NativeMha;

interface Call {
  plan: MhaCallPlan;
  x: Float32Array;
  y: Float32Array;
  cache: KVCache | null;
}

/** A copy backed by a SharedArrayBuffer (a no-op for arrays that already are). */
function pinned(a: Float32Array): Float32Array {
  if (a.buffer instanceof SharedArrayBuffer) return a;
  const copy = new Float32Array(new SharedArrayBuffer(a.byteLength));
  copy.set(a);
  return copy;
}

function pinWeights(w: MhaWeightArrays): MhaWeightArrays {
  const pin = (a: Float32Array | null) => a && pinned(a);
  return {
    wq: pinned(w.wq), wk: pinned(w.wk), wv: pinned(w.wv), wo: pin(w.wo),
    bq: pin(w.bq), bk: pin(w.bk), bv: pin(w.bv), bo: pin(w.bo),
  };
}

/**
 * An attention layer: `y = attention(x Wq + bq, x Wk + bk, x Wv + bv) Wo + bo`, heads splitting the
 * projected axis in order, query head h reading kv head `floor(h / (numHeads / numKVHeads))`.
 * The layer keeps its own copy of the weights, in memory that cannot be detached or transferred
 * (a SharedArrayBuffer), so a forwardAsync running on the thread pool can never read freed memory
 * and later changes to the caller's arrays do not change the layer. Weights already backed by a
 * SharedArrayBuffer are used in place, without a copy (and changing them does change the layer).
 * It uses the backend active when it was created.
 * @example
 * const layer = new MultiHeadAttention({ numHeads: 8, numKVHeads: 2 }, { wq, wk, wv, wo });
 * const y = layer.forward({ data: x, dims: [1, 16, 512] });        // causal by default
 */
export class MultiHeadAttention {
  readonly numHeads: number;
  readonly numKVHeads: number;
  readonly headDim: number;
  readonly dIn: number;
  readonly dOut: number;
  readonly causal: boolean;
  readonly scale: number;
  /** The backend this layer was created with. */
  readonly backend: BackendName;
  readonly #plan: MhaPlan;
  readonly #weights: MhaWeightArrays;
  readonly #native: NativeMha | null;

  /**
   * @param config numHeads; numKVHeads (default numHeads, 1 = multi-query); causal (default true);
   *   scale (default 1 / sqrt(headDim))
   * @param weights wq [dIn, numHeads*headDim], wk and wv [dIn, numKVHeads*headDim], optional
   *   wo [numHeads*headDim, dOut] and 1-D biases bq, bk, bv, bo. headDim = wq.dims[1] / numHeads.
   */
  constructor(config: MultiHeadAttentionConfig, weights: MultiHeadAttentionWeights) {
    const { plan, weights: given } = validateMha(config, weights);
    const w = pinWeights(given);
    this.#plan = plan;
    this.#weights = w;
    this.numHeads = plan.numHeads;
    this.numKVHeads = plan.numKVHeads;
    this.headDim = plan.headDim;
    this.dIn = plan.dIn;
    this.dOut = plan.dOut;
    this.causal = plan.causal;
    this.scale = plan.scale;
    this.backend = current().name;
    if (this.backend === 'native') {
      const NativeClass = binding()!.MultiHeadAttention as NativeMhaClass;
      this.#native = new NativeClass(plan.nativeParams, w.wq, w.wk, w.wv, w.wo, w.bq, w.bk, w.bv, w.bo);
    } else {
      this.#native = null;
    }
  }

  #prepare(x: Tensor, opts: MultiHeadAttentionForwardOptions | undefined): Call {
    const given = opts && typeof opts === 'object' ? (opts as { cache?: unknown }).cache : undefined;
    if (given !== undefined && !(given instanceof KVCache)) throw typeError('opts.cache', 'a KVCache', given);
    const cache = given ?? null;
    const { call, x: data } = validateMhaForward(this.#plan, this.backend, x, opts, cache && cacheState(cache));
    return { plan: call, x: data, y: new Float32Array(call.B * call.S * this.#plan.dOut), cache };
  }

  #nativeArgs(c: Call): Parameters<NativeMha['forward']> {
    const storage = c.cache && cacheStorage(c.cache).native;
    const mask = c.plan.mask;
    return [c.x, c.plan.B, c.plan.S, storage, mask ? mask.data : null, c.plan.maskStrides, c.y];
  }

  /**
   * Runs the layer on x. With `opts.cache`, query i of this call sits at position
   * `cache.length + i`; its keys and values are appended to the cache, which then grows by S.
   * An error (full cache, wrong sizes, ...) is thrown before anything changes.
   * @param x [B, S, dIn]
   * @param opts cache, attnMask
   * @returns [B, S, dOut]
   */
  forward(x: Tensor, opts?: MultiHeadAttentionForwardOptions): Tensor {
    const c = this.#prepare(x, opts);
    if (this.#native) this.#native.forward(...this.#nativeArgs(c));
    else mhaForward(this.#plan, this.#weights, c.plan, c.x, c.cache && cacheStorage(c.cache).js, c.y);
    return { data: c.y, dims: [...c.plan.outDims] };
  }

  /**
   * forward() off the JS thread: the native layer runs on the libuv thread pool; the JS backend
   * computes on this thread and then resolves. x and the cache must not be touched until the
   * promise settles: while it is pending, any other use of the same cache throws (two appends
   * interleaved would corrupt it), while other caches and this layer stay usable.
   * Argument errors reject the promise.
   * @param x [B, S, dIn]
   * @param opts cache, attnMask
   */
  async forwardAsync(x: Tensor, opts?: MultiHeadAttentionForwardOptions): Promise<Tensor> {
    const c = this.#prepare(x, opts);
    if (this.#native) {
      // A failure inside the worker has no JS stack; give it this call's.
      const callSite = new Error();
      try {
        await this.#native.forwardAsync(...this.#nativeArgs(c));
      } catch (err) {
        if (err instanceof Error && callSite.stack) err.stack = `${err.name}: ${err.message}${callSite.stack.slice(callSite.stack.indexOf('\n'))}`;
        throw err;
      }
    } else {
      mhaForward(this.#plan, this.#weights, c.plan, c.x, c.cache && cacheStorage(c.cache).js, c.y);
    }
    return { data: c.y, dims: [...c.plan.outDims] };
  }
}
