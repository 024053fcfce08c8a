// MultiHeadAttention: one attention layer with its projections (MHA, GQA, MQA), optionally decoding
// through a KVCache. Validates once and runs the layer the backend made for it (one addon call per
// forward on native, the JS GEMM and attention kernels on js).
import { pinned } from './pinned';
import { current, type MhaKernel } from './backend';
import { typeError, withCallSite } from './errors';
import { cacheState, cacheStore, KVCache } from './kv-cache';
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
  /**
   * B offsets >= 0, one per row, for a layer with rope: row b's query i is rotated (and its key
   * cached) at position `cache length + i - positionOffsets[b]`, clamped at 0. A left-padded batch
   * passes each row's pad count, so every row counts positions from its first real token (the pads,
   * hidden by attnMask, sit at 0). A layer without rope has no positions and ignores them.
   */
  positionOffsets?: Int32Array;
}

interface Call {
  plan: MhaCallPlan;
  x: Float32Array;
  cache: KVCache | null;
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
  readonly #kernel: MhaKernel;

  /**
   * @param config numHeads; numKVHeads (default numHeads, 1 = multi-query); causal (default true);
   *   scale (default 1 / sqrt(headDim))
   * @param weights wq [dIn, numHeads*headDim], wk and wv [dIn, numKVHeads*headDim], optional
   *   wo [numHeads*headDim, dOut] and 1-D biases bq, bk, bv, bo. headDim = wq.dims[1] / numHeads.
   */
  constructor(config: MultiHeadAttentionConfig, weights: MultiHeadAttentionWeights) {
    const { plan, weights: given } = validateMha(config, weights);
    this.#plan = plan;
    this.numHeads = plan.numHeads;
    this.numKVHeads = plan.numKVHeads;
    this.headDim = plan.headDim;
    this.dIn = plan.dIn;
    this.dOut = plan.dOut;
    this.causal = plan.causal;
    this.scale = plan.scale;
    const backend = current();
    this.backend = backend.name;
    this.#kernel = backend.createMha(plan, pinWeights(given));
  }

  #prepare(x: Tensor, opts: MultiHeadAttentionForwardOptions | undefined): Call {
    const given = opts && typeof opts === 'object' ? (opts as { cache?: unknown }).cache : undefined;
    if (given !== undefined && !(given instanceof KVCache)) throw typeError('opts.cache', 'a KVCache', given);
    const cache = given ?? null;
    const { call, x: data } = validateMhaForward(this.#plan, this.backend, x, opts, cache && cacheState(cache));
    return { plan: call, x: data, cache };
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
    const y = new Float32Array(c.plan.B * c.plan.S * this.#plan.dOut);
    this.#kernel.forward(c.plan, c.x, c.cache && cacheStore(c.cache), y);
    return { data: y, dims: [...c.plan.outDims] };
  }

  /**
   * forward() off the JS thread: the native layer runs on the libuv thread pool; the JS backend
   * computes on this thread and then resolves. The job reads copies of x and the mask (unless a
   * SharedArrayBuffer backs them), so the caller may reuse them at once. The cache must not be touched
   * until the promise settles: while it is pending, any other use of the same cache throws (two
   * appends interleaved would corrupt it), while other caches and this layer stay usable.
   * Argument errors reject the promise.
   * @param x [B, S, dIn]
   * @param opts cache, attnMask
   */
  async forwardAsync(x: Tensor, opts?: MultiHeadAttentionForwardOptions): Promise<Tensor> {
    const c = this.#prepare(x, opts);
    const y = await withCallSite(() => this.#kernel.forwardAsync(c.plan, c.x, c.cache && cacheStore(c.cache)));
    return { data: y, dims: [...c.plan.outDims] };
  }
}
