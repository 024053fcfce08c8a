// Validation for Multi-head Latent Attention (lib/mla.ts) and its LatentKVCache: the config (Hugging
// Face's DeepseekV2Config keys), the weights (HF's names under `self_attn.`, [out, in]) and each
// forward call are checked once and folded into plans, with the argument errors of lib/errors.ts.
// Every weight's dims are checked against the config, so a mismatch names the weight, the config
// fields it was derived from and both shapes.
import { formatDims, rangeError, shapeError, typeError } from './errors';
import type { Tensor } from './types';
import { checkOptions, checkTensor, requiredObject } from './validate';
import { checkPositiveInteger, MAX_SEQ_LEN } from './validate-layers';
import { validateRope } from './validate-llama-ops';

/** `new MultiHeadLatentAttention(config, weights)`: DeepseekV2Config's attention keys, spelled as HF spells them. */
export interface MultiHeadLatentAttentionConfig {
  hidden_size: number;
  num_attention_heads: number;
  /** Rank of the query's low-rank projection (q_a_proj, q_b_proj); null or absent: a plain q_proj (DeepSeek-V2-Lite). */
  q_lora_rank?: number | null;
  /** Width of the compressed key/value latent, the part of each cached row that is not rotary. */
  kv_lora_rank: number;
  qk_nope_head_dim: number;
  /** Width of the rotary part of each query head and of the one rotary key all heads share; even. */
  qk_rope_head_dim: number;
  v_head_dim: number;
  /** Default 10000 (DeepseekV2Config's). */
  rope_theta?: number;
  /**
   * Accepted so a checkpoint's config passes; it is the decoder layer's norms' eps. HF's
   * DeepseekV2Attention builds q_a_layernorm and kv_a_layernorm with DeepseekV2RMSNorm's default
   * eps, 1e-6, whatever this says, and so does this layer.
   */
  rms_norm_eps?: number;
  /** Only null or absent: YaRN ("yarn", the released checkpoints' scaling) is not supported yet. */
  rope_scaling?: null;
  /** Only false or absent: the layer has no biases. */
  attention_bias?: boolean;
}

/** The layer's weights, HF's names under `self_attn.`, each [out, in] (nn.Linear's layout); norms 1-D. */
export interface MultiHeadLatentAttentionWeights {
  /** [num_attention_heads * (qk_nope_head_dim + qk_rope_head_dim), hidden_size]; without q_lora_rank. */
  'q_proj.weight'?: Tensor;
  /** [q_lora_rank, hidden_size]; with q_lora_rank. */
  'q_a_proj.weight'?: Tensor;
  /** [q_lora_rank]; with q_lora_rank. */
  'q_a_layernorm.weight'?: Tensor | Float32Array;
  /** [num_attention_heads * (qk_nope_head_dim + qk_rope_head_dim), q_lora_rank]; with q_lora_rank. */
  'q_b_proj.weight'?: Tensor;
  /** [kv_lora_rank + qk_rope_head_dim, hidden_size] */
  'kv_a_proj_with_mqa.weight': Tensor;
  /** [kv_lora_rank] */
  'kv_a_layernorm.weight': Tensor | Float32Array;
  /** [num_attention_heads * (qk_nope_head_dim + v_head_dim), kv_lora_rank] */
  'kv_b_proj.weight': Tensor;
  /** [hidden_size, num_attention_heads * v_head_dim] */
  'o_proj.weight': Tensor;
}

/** `new LatentKVCache(config)`: per token one row of kvLoraRank + ropeDim floats. */
export interface LatentKVCacheConfig {
  batch: number;
  kvLoraRank: number;
  ropeDim: number;
  maxSeqLen: number;
}

/** A layer's sizes. */
export interface MlaPlan {
  readonly hidden: number;
  readonly H: number;
  /** 0: a plain q_proj. */
  readonly qLora: number;
  readonly kvLora: number;
  readonly nope: number;
  readonly rope: number;
  readonly vDim: number;
  /** HF's softmax_scale, (qk_nope_head_dim + qk_rope_head_dim)^-0.5. */
  readonly scale: number;
  /** The rope op's qk_rope_head_dim / 2 inverse frequencies (float64, then float32). */
  readonly invFreq: Float32Array;
}

/** The weights as given (HF layout), checked. */
export interface MlaWeightArrays {
  readonly q: Float32Array | null;
  readonly qA: Float32Array | null;
  readonly qANorm: Float32Array | null;
  readonly qB: Float32Array | null;
  readonly kvA: Float32Array;
  readonly kvANorm: Float32Array;
  readonly kvB: Float32Array;
  readonly o: Float32Array;
}

/** What a forward call needs to know about its cache. */
export interface LatentCacheState {
  readonly disposed: boolean;
  readonly batch: number;
  readonly kvLoraRank: number;
  readonly ropeDim: number;
  readonly maxSeqLen: number;
  readonly length: number;
}

/** How the attention runs: in the latent space (W_uk, W_uv absorbed) or over expanded per-head keys/values. */
export type MlaForm = 'absorbed' | 'expanded';

export interface MlaCall {
  readonly B: number;
  readonly S: number;
  /** Cached tokens before this call (0 without a cache). */
  readonly past: number;
  readonly form: MlaForm;
}

const CONFIG_KEYS = ['hidden_size', 'num_attention_heads', 'q_lora_rank', 'kv_lora_rank', 'qk_nope_head_dim', 'qk_rope_head_dim',
  'v_head_dim', 'rope_theta', 'rms_norm_eps', 'rope_scaling', 'attention_bias'] as const;
const WEIGHT_KEYS = ['q_proj.weight', 'q_a_proj.weight', 'q_a_layernorm.weight', 'q_b_proj.weight', 'kv_a_proj_with_mqa.weight',
  'kv_a_layernorm.weight', 'kv_b_proj.weight', 'o_proj.weight'] as const;
const CACHE_KEYS = ['batch', 'kvLoraRank', 'ropeDim', 'maxSeqLen'] as const;
const FORWARD_KEYS = ['cache', 'form'] as const;

function finite(value: unknown, name: string, fallback: number, ok: (v: number) => boolean, expected: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') throw typeError(name, expected, value);
  if (!ok(value)) throw rangeError(name, expected, String(value));
  return value;
}

/** A weight of exact dims; `why` says where each dim comes from. */
function weight(w: Record<string, unknown>, key: string, dims: readonly number[], why: string, vector = false): Float32Array {
  const name = `weights["${key}"]`;
  const t = checkTensor(w[key], name, vector);
  if (t.dims.length !== dims.length || t.dims.some((d, i) => d !== dims[i])) {
    throw shapeError(name, `dims ${formatDims(dims)} (${why})`, `dims ${formatDims(t.dims)}`);
  }
  return t.data;
}

function absent(w: Record<string, unknown>, key: string, why: string): void {
  if (w[key] !== undefined) throw typeError(`weights["${key}"]`, `undefined (${why})`, w[key]);
}

/** Checks a layer's config and weights; throws naming the offending field, weight and shapes. */
export function validateMla(config: unknown, weights: unknown): { plan: MlaPlan; weights: MlaWeightArrays } {
  const c = requiredObject(config, 'config', CONFIG_KEYS);
  const w = requiredObject(weights, 'weights', WEIGHT_KEYS);
  const hidden = checkPositiveInteger(c.hidden_size, 'config.hidden_size');
  const H = checkPositiveInteger(c.num_attention_heads, 'config.num_attention_heads');
  const qLora = c.q_lora_rank === undefined || c.q_lora_rank === null ? 0 : checkPositiveInteger(c.q_lora_rank, 'config.q_lora_rank');
  const kvLora = checkPositiveInteger(c.kv_lora_rank, 'config.kv_lora_rank');
  const nope = checkPositiveInteger(c.qk_nope_head_dim, 'config.qk_nope_head_dim');
  const rope = checkPositiveInteger(c.qk_rope_head_dim, 'config.qk_rope_head_dim');
  if (rope % 2 !== 0) throw rangeError('config.qk_rope_head_dim', 'an even integer (the rotary dims pair up)', String(rope));
  const vDim = checkPositiveInteger(c.v_head_dim, 'config.v_head_dim');
  const theta = finite(c.rope_theta, 'config.rope_theta', 10000, (v) => Number.isFinite(v) && v > 0, 'a finite number > 0');
  finite(c.rms_norm_eps, 'config.rms_norm_eps', 1e-6, (v) => Number.isFinite(v) && v >= 0, 'a finite number >= 0');
  if (c.rope_scaling !== undefined && c.rope_scaling !== null) {
    const type = typeof c.rope_scaling === 'object' ? (c.rope_scaling as { type?: unknown; rope_type?: unknown }) : null;
    const kind = type ? JSON.stringify(type.type ?? type.rope_type) : undefined;
    throw rangeError('config.rope_scaling', 'null (rope scaling, such as the released checkpoints\' "yarn", is not supported yet)',
      kind ? `a rope_scaling of type ${kind}` : String(c.rope_scaling));
  }
  if (c.attention_bias !== undefined && c.attention_bias !== false) {
    throw rangeError('config.attention_bias', 'false or undefined (the layer has no biases)', String(c.attention_bias));
  }

  const qk = nope + rope;
  const qWhy = `[num_attention_heads * (qk_nope_head_dim + qk_rope_head_dim), ${qLora ? 'q_lora_rank' : 'hidden_size'}] = [${H} * (${nope} + ${rope}), ${qLora || hidden}], HF's [out, in]`;
  let q: Float32Array | null = null, qA: Float32Array | null = null, qANorm: Float32Array | null = null, qB: Float32Array | null = null;
  if (qLora) {
    absent(w, 'q_proj.weight', `config.q_lora_rank is ${qLora}: the query comes from q_a_proj and q_b_proj`);
    qA = weight(w, 'q_a_proj.weight', [qLora, hidden], `[q_lora_rank, hidden_size] = [${qLora}, ${hidden}], HF's [out, in]`);
    qANorm = weight(w, 'q_a_layernorm.weight', [qLora], `q_lora_rank = ${qLora}`, true);
    qB = weight(w, 'q_b_proj.weight', [H * qk, qLora], qWhy);
  } else {
    for (const key of ['q_a_proj.weight', 'q_a_layernorm.weight', 'q_b_proj.weight']) {
      absent(w, key, 'config.q_lora_rank is null: the query comes from q_proj');
    }
    q = weight(w, 'q_proj.weight', [H * qk, hidden], qWhy);
  }
  const kvA = weight(w, 'kv_a_proj_with_mqa.weight', [kvLora + rope, hidden],
    `[kv_lora_rank + qk_rope_head_dim, hidden_size] = [${kvLora} + ${rope}, ${hidden}], HF's [out, in]`);
  const kvANorm = weight(w, 'kv_a_layernorm.weight', [kvLora], `kv_lora_rank = ${kvLora}`, true);
  const kvB = weight(w, 'kv_b_proj.weight', [H * (nope + vDim), kvLora],
    `[num_attention_heads * (qk_nope_head_dim + v_head_dim), kv_lora_rank] = [${H} * (${nope} + ${vDim}), ${kvLora}], HF's [out, in]`);
  const o = weight(w, 'o_proj.weight', [hidden, H * vDim],
    `[hidden_size, num_attention_heads * v_head_dim] = [${hidden}, ${H} * ${vDim}], HF's [out, in]`);

  // The rope op's own inverse frequencies, run once on a one-row stand-in.
  const { plan: ropePlan } = validateRope({ data: new Float32Array(rope), dims: [1, 1, 1, rope] }, new Int32Array(1), { theta });
  const plan: MlaPlan = Object.freeze({ hidden, H, qLora, kvLora, nope, rope, vDim, scale: 1 / Math.sqrt(qk), invFreq: ropePlan.invFreq });
  return { plan, weights: Object.freeze({ q, qA, qANorm, qB, kvA, kvANorm, kvB, o }) };
}

/** Checks `new LatentKVCache(config)`. */
export function validateLatentCacheConfig(config: unknown): LatentKVCacheConfig {
  const c = requiredObject(config, 'config', CACHE_KEYS);
  const batch = checkPositiveInteger(c.batch, 'config.batch');
  const kvLoraRank = checkPositiveInteger(c.kvLoraRank, 'config.kvLoraRank');
  const ropeDim = checkPositiveInteger(c.ropeDim, 'config.ropeDim');
  const maxSeqLen = checkPositiveInteger(c.maxSeqLen, 'config.maxSeqLen', MAX_SEQ_LEN);
  if (batch * maxSeqLen * (kvLoraRank + ropeDim) > Number.MAX_SAFE_INTEGER) {
    throw rangeError('config', 'batch * maxSeqLen * (kvLoraRank + ropeDim) of at most 2^53 - 1', `${batch} * ${maxSeqLen} * (${kvLoraRank} + ${ropeDim})`);
  }
  return Object.freeze({ batch, kvLoraRank, ropeDim, maxSeqLen });
}

/**
 * Checks one forward call: x [B, S, hidden_size], the options, and the cache (matching sizes,
 * room for S more tokens). Throws before any state changes.
 */
export function validateMlaForward(plan: MlaPlan, x: unknown, opts: unknown, cache: LatentCacheState | null): { call: MlaCall; x: Float32Array } {
  const tx = checkTensor(x, 'x');
  const o = checkOptions(opts, 'opts', FORWARD_KEYS);
  if (tx.dims.length !== 3 || tx.dims[2] !== plan.hidden) {
    throw shapeError('x', `dims [B, S, ${plan.hidden}] (hidden_size)`, `dims ${formatDims(tx.dims)}`);
  }
  const [B, S] = tx.dims;
  let form: MlaForm = 'absorbed';
  if (o.form !== undefined) {
    if (o.form !== 'absorbed' && o.form !== 'expanded') {
      throw (typeof o.form === 'string' ? rangeError('opts.form', "'absorbed' or 'expanded'", JSON.stringify(o.form)) : typeError('opts.form', "'absorbed' or 'expanded'", o.form));
    }
    form = o.form;
  }
  let past = 0;
  if (cache) {
    if (cache.disposed) throw latentDisposedError();
    if (cache.batch !== B || cache.kvLoraRank !== plan.kvLora || cache.ropeDim !== plan.rope) {
      throw shapeError('opts.cache', `a LatentKVCache with batch ${B}, kvLoraRank ${plan.kvLora}, ropeDim ${plan.rope} (from x and this layer's kv_lora_rank, qk_rope_head_dim)`,
        `one with batch ${cache.batch}, kvLoraRank ${cache.kvLoraRank}, ropeDim ${cache.ropeDim}`);
    }
    if (cache.length + S > cache.maxSeqLen) {
      throw rangeError('x', `at most ${cache.maxSeqLen - cache.length} new positions (the cache holds ${cache.length} of maxSeqLen ${cache.maxSeqLen})`,
        `dims ${formatDims(tx.dims)} (${S} positions)`, 'ERR_ATTN_CACHE_FULL');
    }
    past = cache.length;
  }
  return { call: Object.freeze({ B, S, past, form }), x: tx.data };
}

/** The error for a disposed cache (any use after dispose()). */
export function latentDisposedError(): Error {
  return Object.assign(new Error('This LatentKVCache has been disposed; create a new one'), { code: 'ERR_ATTN_INVALID_VALUE' });
}
