// Validation for the layer modules (MultiHeadAttention, KVCache): configs and weights are checked
// once at construction and folded into frozen plans; each forward call is checked against the
// plan and the cache before either backend runs. Sizes are derived from the weights, never
// trusted from the config, so every mismatch names the weight and both shapes.
import { formatDims, rangeError, shapeError, typeError } from './errors';
import type { BackendName, Tensor } from './types';
import type { WeightDtype } from './models/decoder-spec';
import { checkBoolean, checkOptions, checkTensor, dtypeOption, requiredObject } from './validate';
import { checkMask, type AttentionPlan, type MaskView } from './validate-attention';
import { validateRope, type RopeOptions } from './validate-llama-ops';

/** `new MultiHeadAttention(config, weights)`: the head counts and attention options. */
export interface MultiHeadAttentionConfig {
  /** Query heads; headDim = wq.dims[1] / numHeads. */
  numHeads: number;
  /** Key/value heads, a divisor of numHeads. Default numHeads (MHA); 1 is multi-query attention. */
  numKVHeads?: number;
  /** Query i sees key j only when j <= i (+ the cached positions). Default true. */
  causal?: boolean;
  /** Multiplies Q K^T. Default 1 / sqrt(headDim). */
  scale?: number;
  /**
   * Rotary position embedding of q and k after their projections (before k is cached), as the
   * rope op: theta, rotaryDim (default headDim), scaling (Llama 3). Query/key i of a call sits at
   * position `cache.length + i` (i without a cache). Default: none.
   */
  rope?: RopeOptions;
  /**
   * Mistral's sliding window (causal layers only): the query at position p sees only the keys in
   * (p - slidingWindow, p]. Default: none.
   */
  slidingWindow?: number;
}

/** Projection weights, `y = x @ W + b` with W of dims [in, out]. Biases are 1-D (Tensor or Float32Array). */
export interface MultiHeadAttentionWeights {
  /** [dIn, numHeads * headDim] */
  wq: Tensor;
  /** [dIn, numKVHeads * headDim] */
  wk: Tensor;
  /** [dIn, numKVHeads * headDim] */
  wv: Tensor;
  /** [numHeads * headDim, dOut]; absent: no output projection (dOut = numHeads * headDim). */
  wo?: Tensor;
  bq?: Tensor | Float32Array;
  bk?: Tensor | Float32Array;
  bv?: Tensor | Float32Array;
  /** Only together with wo. */
  bo?: Tensor | Float32Array;
}

/** `new KVCache(config)`: the cache holds [batch, numKVHeads, maxSeqLen, headDim] keys and values. */
export interface KVCacheConfig {
  batch: number;
  numKVHeads: number;
  headDim: number;
  maxSeqLen: number;
  /**
   * The element type the keys and values are stored in: 'F32' (default), or 'F16' / 'BF16' (each
   * value rounded to nearest even as it is written; half the bytes, and the attention kernels read
   * them directly).
   */
  dtype?: WeightDtype;
}

/** A layer's sizes, all derived from its weights. */
export interface MhaPlan {
  readonly dIn: number;
  readonly dOut: number;
  readonly numHeads: number;
  readonly numKVHeads: number;
  readonly headDim: number;
  readonly causal: boolean;
  readonly scale: number;
  /** Rotary embedding of q and k, or null. */
  readonly rope: LayerRope | null;
  /** Keys a query sees at most (0: no window). */
  readonly slidingWindow: number;
}

/** The rope op's parameters for one layer: rotaryDim and its rotaryDim / 2 float32 inverse frequencies. */
export interface LayerRope {
  readonly rotaryDim: number;
  readonly invFreq: Float32Array;
}

export interface MhaWeightArrays {
  readonly wq: Float32Array;
  readonly wk: Float32Array;
  readonly wv: Float32Array;
  readonly wo: Float32Array | null;
  readonly bq: Float32Array | null;
  readonly bk: Float32Array | null;
  readonly bv: Float32Array | null;
  readonly bo: Float32Array | null;
}

/** What a forward call needs to know about the cache it was given. */
export interface CacheState {
  readonly backend: BackendName;
  readonly disposed: boolean;
  readonly batch: number;
  readonly numKVHeads: number;
  readonly headDim: number;
  readonly maxSeqLen: number;
  readonly length: number;
}

/** One forward call: sizes, where its queries sit, and the mask seen over [B, numHeads, S, total]. */
export interface MhaCallPlan {
  readonly B: number;
  readonly S: number;
  /** Cached positions before this call (0 without a cache). */
  readonly past: number;
  readonly total: number;
  readonly mask: MaskView | null;
  /** B values >= 0 subtracted from each row's rotary positions, or null (see MultiHeadAttentionForwardOptions). */
  readonly positionOffsets: Int32Array | null;
  readonly outDims: readonly number[];
}

// Causal offsets reach the kernels as int32, so positions must fit in one.
export const MAX_SEQ_LEN = 0x7fffffff;

const CONFIG_KEYS = ['numHeads', 'numKVHeads', 'causal', 'scale', 'rope', 'slidingWindow'] as const;
const ROPE_KEYS = ['theta', 'rotaryDim', 'scaling'] as const;
const WEIGHT_KEYS = ['wq', 'wk', 'wv', 'wo', 'bq', 'bk', 'bv', 'bo'] as const;
const CACHE_KEYS = ['batch', 'numKVHeads', 'headDim', 'maxSeqLen', 'dtype'] as const;
const FORWARD_KEYS = ['cache', 'attnMask', 'positionOffsets'] as const;

export function checkPositiveInteger(value: unknown, name: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number') throw typeError(name, 'a positive integer', value);
  if (!Number.isInteger(value) || value < 1 || value > max) throw rangeError(name, `an integer in [1, ${max}]`, String(value));
  return value;
}

/** checkTensor on one read of `data` and `dims`, so a getter cannot change them after the check. */
function stableTensor(value: unknown, name: string, allowBareArray = false): Tensor {
  if (typeof value !== 'object' || value === null || !('data' in value) || !('dims' in value)) return checkTensor(value, name, allowBareArray);
  const { data, dims } = value as { data: unknown; dims: unknown };
  const copy = Array.isArray(dims) || ArrayBuffer.isView(dims) ? Array.from(dims as ArrayLike<number>) : dims;
  return checkTensor({ data, dims: copy }, name, allowBareArray);
}

function checkMatrix(value: unknown, name: string, expected: string): Tensor {
  const t = stableTensor(value, name);
  if (t.dims.length !== 2) throw shapeError(name, `2-D dims ${expected}`, `dims ${formatDims(t.dims)}`);
  return t;
}

function checkVector(value: unknown, name: string, n: number, why: string): Float32Array | null {
  if (value === undefined || value === null) return null;
  const t = stableTensor(value, name, true);
  if (t.dims.length !== 1 || t.dims[0] !== n) throw shapeError(name, `dims [${n}] (${why})`, `dims ${formatDims(t.dims)}`);
  return t.data;
}

/**
 * config.rope for a layer of head dim D. theta and rotaryDim are checked here (their bounds name the
 * layer's headDim); the scaling checks and the inverse frequencies are the rope op's own
 * (validateRope, float64 then float32), run once on a one-row stand-in for q, with its argument
 * names turned into config.rope's.
 */
function layerRope(value: unknown, D: number): LayerRope {
  const r = requiredObject(value, 'config.rope', ROPE_KEYS);
  if (typeof r.theta !== 'number') throw typeError('config.rope.theta', 'a finite number > 0', r.theta);
  if (!(Number.isFinite(r.theta) && r.theta > 0)) throw rangeError('config.rope.theta', 'a finite number > 0', String(r.theta));
  const expected = `an even integer in [2, ${D}] (headDim)`;
  const rotaryDim = r.rotaryDim === undefined ? D : r.rotaryDim;
  if (typeof rotaryDim !== 'number') throw typeError('config.rope.rotaryDim', expected, rotaryDim);
  if (!Number.isInteger(rotaryDim) || rotaryDim < 2 || rotaryDim > D || rotaryDim % 2 !== 0) {
    throw rangeError('config.rope.rotaryDim', r.rotaryDim === undefined ? `${expected}; it defaults to headDim, which is odd` : expected, String(rotaryDim));
  }
  try {
    const { plan } = validateRope({ data: new Float32Array(D), dims: [1, 1, 1, D] }, new Int32Array(1), { ...r, rotaryDim });
    return Object.freeze({ rotaryDim, invFreq: plan.invFreq });
  } catch (err) {
    if (err instanceof Error) err.message = err.message.replace(/\bopts\./g, 'config.rope.');
    throw err;
  }
}

/** Checks a layer's config and weights; throws naming the offending field and shapes. */
export function validateMha(config: unknown, weights: unknown): { plan: MhaPlan; weights: MhaWeightArrays } {
  const c = requiredObject(config, 'config', CONFIG_KEYS);
  const w = requiredObject(weights, 'weights', WEIGHT_KEYS);
  const Hq = checkPositiveInteger(c.numHeads, 'config.numHeads');
  const Hkv = c.numKVHeads === undefined ? Hq : checkPositiveInteger(c.numKVHeads, 'config.numKVHeads');
  if (Hq % Hkv !== 0) throw rangeError('config.numKVHeads', `a divisor of numHeads = ${Hq}`, String(Hkv));
  const causal = checkBoolean(c.causal, 'config.causal', true);
  if (c.scale !== undefined) {
    if (typeof c.scale !== 'number') throw typeError('config.scale', 'a finite number', c.scale);
    if (!Number.isFinite(c.scale)) throw rangeError('config.scale', 'a finite number', String(c.scale));
  }

  const wq = checkMatrix(w.wq, 'weights.wq', '[dIn, numHeads * headDim]');
  const [dIn, qWidth] = wq.dims;
  if (qWidth % Hq !== 0) {
    throw shapeError('weights.wq', `dims [dIn, numHeads * headDim] with a second dim divisible by numHeads = ${Hq}`, `dims ${formatDims(wq.dims)}`);
  }
  const D = qWidth / Hq, kvWidth = Hkv * D;
  const kvExpected = `[${dIn}, ${kvWidth}] (dIn = ${dIn} from weights.wq, numKVHeads * headDim = ${Hkv} * ${D})`;
  const wk = checkMatrix(w.wk, 'weights.wk', kvExpected);
  if (wk.dims[0] !== dIn || wk.dims[1] !== kvWidth) throw shapeError('weights.wk', `dims ${kvExpected}`, `dims ${formatDims(wk.dims)}`);
  const wv = checkMatrix(w.wv, 'weights.wv', kvExpected);
  if (wv.dims[0] !== dIn || wv.dims[1] !== kvWidth) throw shapeError('weights.wv', `dims ${kvExpected}`, `dims ${formatDims(wv.dims)}`);
  let wo: Tensor | null = null;
  if (w.wo !== undefined && w.wo !== null) {
    const oExpected = `[${qWidth}, dOut] (numHeads * headDim = ${Hq} * ${D})`;
    wo = checkMatrix(w.wo, 'weights.wo', oExpected);
    if (wo.dims[0] !== qWidth) throw shapeError('weights.wo', `dims ${oExpected}`, `dims ${formatDims(wo.dims)}`);
  } else if (w.bo !== undefined && w.bo !== null) {
    throw typeError('weights.bo', 'undefined (there is no weights.wo to add it to)', w.bo);
  }
  const dOut = wo ? wo.dims[1] : qWidth;
  const bq = checkVector(w.bq, 'weights.bq', qWidth, `numHeads * headDim = ${Hq} * ${D}`);
  const bk = checkVector(w.bk, 'weights.bk', kvWidth, `numKVHeads * headDim = ${Hkv} * ${D}`);
  const bv = checkVector(w.bv, 'weights.bv', kvWidth, `numKVHeads * headDim = ${Hkv} * ${D}`);
  const bo = checkVector(w.bo, 'weights.bo', dOut, 'dOut, dim 1 of weights.wo');

  const rope = c.rope === undefined || c.rope === null ? null : layerRope(c.rope, D);
  let slidingWindow = 0;
  if (c.slidingWindow !== undefined && c.slidingWindow !== null) {
    slidingWindow = checkPositiveInteger(c.slidingWindow, 'config.slidingWindow', MAX_SEQ_LEN);
    if (!causal) throw rangeError('config.slidingWindow', 'undefined for a non-causal layer (the window ends at each query)', String(slidingWindow));
  }

  const scale = c.scale === undefined ? 1 / Math.sqrt(D) : (c.scale as number);
  const plan: MhaPlan = Object.freeze({ dIn, dOut, numHeads: Hq, numKVHeads: Hkv, headDim: D, causal, scale, rope, slidingWindow });
  const arrays: MhaWeightArrays = Object.freeze({ wq: wq.data, wk: wk.data, wv: wv.data, wo: wo ? wo.data : null, bq, bk, bv, bo });
  return { plan, weights: arrays };
}

/** Checks `new KVCache(config)`. */
export function validateKVCacheConfig(config: unknown): Required<KVCacheConfig> {
  const c = requiredObject(config, 'config', CACHE_KEYS);
  const batch = checkPositiveInteger(c.batch, 'config.batch');
  const numKVHeads = checkPositiveInteger(c.numKVHeads, 'config.numKVHeads');
  const headDim = checkPositiveInteger(c.headDim, 'config.headDim');
  const maxSeqLen = checkPositiveInteger(c.maxSeqLen, 'config.maxSeqLen', MAX_SEQ_LEN);
  if (batch * numKVHeads * headDim * maxSeqLen > Number.MAX_SAFE_INTEGER) {
    throw rangeError('config', 'batch * numKVHeads * headDim * maxSeqLen of at most 2^53 - 1', `${batch} * ${numKVHeads} * ${headDim} * ${maxSeqLen}`);
  }
  const dtype = dtypeOption(c.dtype, 'config.dtype') ?? 'F32';
  return Object.freeze({ batch, numKVHeads, headDim, maxSeqLen, dtype });
}

/** Checks `truncate(n)` against the cache's current length. */
export function checkTruncate(n: unknown, length: number): number {
  if (typeof n !== 'number') throw typeError('n', `an integer in [0, ${length}] (the cache length)`, n);
  if (!Number.isInteger(n) || n < 0 || n > length) throw rangeError('n', `an integer in [0, ${length}] (the cache length)`, String(n));
  return n;
}

/** The error for a disposed cache (any use after dispose()). */
export function disposedError(): Error {
  return Object.assign(new Error('This KVCache has been disposed; create a new one'), { code: 'ERR_ATTN_INVALID_VALUE' });
}

function backendMismatch(layer: BackendName, cache: BackendName): TypeError {
  return Object.assign(
    new TypeError(`Expected a KVCache created with the ${layer} backend (like this layer) for opts.cache but received one created with the ${cache} backend`),
    { code: 'ERR_ATTN_INVALID_TYPE' },
  );
}

/**
 * Checks one forward call: x [B, S, dIn], the options, the cache (same backend, matching sizes,
 * room for S more positions) and the mask over [B, numHeads, S, past + S]. Throws before any
 * state changes.
 */
export function validateMhaForward(plan: MhaPlan, backend: BackendName, x: unknown, opts: unknown,
  cache: CacheState | null): { call: MhaCallPlan; x: Float32Array } {
  const tx = stableTensor(x, 'x');
  const o = checkOptions(opts, 'opts', FORWARD_KEYS);
  if (tx.dims.length !== 3 || tx.dims[2] !== plan.dIn) {
    throw shapeError('x', `dims [B, S, ${plan.dIn}] (dIn = dim 0 of weights.wq)`, `dims ${formatDims(tx.dims)}`);
  }
  const [B, S] = tx.dims;
  let past = 0;
  if (cache) {
    if (cache.disposed) throw disposedError();
    if (cache.backend !== backend) throw backendMismatch(backend, cache.backend);
    const wanted = `batch ${B}, numKVHeads ${plan.numKVHeads}, headDim ${plan.headDim} (from x and this layer)`;
    const got = `batch ${cache.batch}, numKVHeads ${cache.numKVHeads}, headDim ${cache.headDim}`;
    if (cache.batch !== B || cache.numKVHeads !== plan.numKVHeads || cache.headDim !== plan.headDim) {
      throw shapeError('opts.cache', `a KVCache with ${wanted}`, `one with ${got}`);
    }
    if (cache.length + S > cache.maxSeqLen) {
      throw rangeError('x', `at most ${cache.maxSeqLen - cache.length} new positions (the cache holds ${cache.length} of maxSeqLen ${cache.maxSeqLen})`,
        `dims ${formatDims(tx.dims)} (${S} positions)`, 'ERR_ATTN_CACHE_FULL');
    }
    past = cache.length;
  }
  const total = past + S;
  const given = o.attnMask === undefined ? null : checkMask(o.attnMask, B, plan.numHeads, S, total);
  const mask = plan.slidingWindow > 0 && total > plan.slidingWindow ? windowMask(given, plan.slidingWindow, B, plan.numHeads, S, past) : given;
  const positionOffsets = o.positionOffsets === undefined ? null : checkPositionOffsets(o.positionOffsets, B);
  const call: MhaCallPlan = Object.freeze({ B, S, past, total, mask, positionOffsets, outDims: Object.freeze([B, S, plan.dOut]) });
  return { call, x: tx.data };
}

/** opts.positionOffsets: an Int32Array of B offsets >= 0. */
function checkPositionOffsets(value: unknown, B: number): Int32Array {
  const expected = `an Int32Array of ${B} (B) offsets >= 0`;
  if (!(value instanceof Int32Array)) throw typeError('opts.positionOffsets', expected, value);
  if (value.length !== B) throw shapeError('opts.positionOffsets', expected, `length ${value.length}`);
  const bad = value.findIndex((v) => v < 0);
  if (bad >= 0) throw rangeError(`opts.positionOffsets[${bad}]`, 'an offset >= 0', String(value[bad]));
  return value;
}

/**
 * The sliding window as a mask over [B, numHeads, S, len]: key j is hidden from query i (position
 * past + i) when j <= past + i - window; the causal rule hides j > past + i. The attention kernels
 * bound keys from above only (causality, kvValid, the mask length), so the window's lower bound
 * travels as a mask, the same one for both backends, built only for calls that reach past the window
 * (past + S > window): S x total bytes when alone, broadcast over batch and heads. A given mask
 * keeps its values and broadcast dims, with the keys outside the window hidden (boolean 0, or -inf
 * added).
 */
function windowMask(given: MaskView | null, window: number, B: number, H: number, S: number, past: number): MaskView {
  const len = given ? given.len : past + S;
  const mb = given && given.sb ? B : 1, mh = given && given.sh ? H : 1;
  const sq = len, sh = S * len, sb = mh * sh;
  const data = given && !given.bool ? new Float32Array(mb * sb) : new Uint8Array(mb * sb);
  for (let b = 0; b < mb; b++) {
    for (let h = 0; h < mh; h++) {
      for (let i = 0; i < S; i++) {
        const row = b * sb + h * sh + i * sq, first = past + i - window + 1;
        if (given) {
          const from = b * given.sb + h * given.sh + i * given.sq;
          for (let j = 0; j < len; j++) data[row + j] = given.data[from + j];
        } else {
          data.fill(1, row, row + len);
        }
        for (let j = 0; j < Math.min(first, len); j++) data[row + j] = given && !given.bool ? -Infinity : 0;
      }
    }
  }
  return Object.freeze({ data, bool: !(data instanceof Float32Array), sb: mb > 1 ? sb : 0, sh: mh > 1 ? sh : 0, sq, len });
}

/**
 * The attention step of a layer as an attention() plan for the JS kernel: q and y are the
 * [B, S, H * D] projections, k/v either the new [B, S, Hkv * D] projections or the cache's
 * [B, Hkv, maxSeqLen, D] storage (cacheMaxLen > 0), read in place.
 */
export function layerAttentionPlan(plan: MhaPlan, call: MhaCallPlan, cacheMaxLen: number): AttentionPlan {
  const { B, S, past, total, mask } = call;
  const { numHeads: Hq, numKVHeads: Hkv, headDim: D, causal, scale } = plan;
  const heads = (H: number) => Object.freeze({ sb: S * H * D, sh: D, st: H * D });
  const kv = cacheMaxLen > 0 ? Object.freeze({ sb: Hkv * cacheMaxLen * D, sh: cacheMaxLen * D, st: D }) : heads(Hkv);
  const q = heads(Hq);
  const causalOffset = causal ? new Int32Array(B).fill(past) : null;
  return Object.freeze({
    rank: 3, B, Hq, Hkv, Sq: S, Skv: S, past, total, D, Dv: D, scale, softcap: 0, causal, qkMode: -1,
    q, k: kv, v: kv, y: q, kNew: heads(Hkv), vNew: heads(Hkv), mask, kvValid: null, causalOffset,
    yDims: Object.freeze([B, S, Hq * D]), presentKeyDims: null, presentValueDims: null, qkDims: null,
  });
}
