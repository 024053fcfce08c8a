// MultiHeadLatentAttention: DeepSeek-V2/V3's attention layer (Hugging Face's DeepseekV2Attention),
// composed from the backend's ops (matmul, rmsNorm, rope, attention) with no kernel of its own:
//
//   q = q_proj(x), or q_b_proj(RMSNorm(q_a_proj(x)))          per head [q_nope | q_pe]
//   [c_kv, k_pe] = kv_a_proj_with_mqa(x);  c = RMSNorm(c_kv)    k_pe: ONE rotary key for all heads
//   [k_nope, v] = kv_b_proj(c) per head  (W_uk[h]: [qk_nope, kv_lora], W_uv[h]: [v_head_dim, kv_lora])
//   y = o_proj(softmax([q_nope, rope(q_pe)] . [k_nope, rope(k_pe)] * (qk_nope + qk_rope)^-0.5, causal) v)
//
// The cache (lib/latent-kv-cache.ts) holds only [c | rope(k_pe)] per token. The default 'absorbed'
// form never expands per-head keys: q_nope . k_nope = (q_nope W_uk[h]) . c, so with q_lat[h] =
// q_nope[h] W_uk[h] every head's query [q_lat | q_pe] meets the same key row [c | k_pe] and the
// same value row c: multi-query attention (one kv head of width kv_lora + qk_rope, Dv = kv_lora)
// that reads the cache in place, then o_lat[h] W_uv[h]^T per head (DeepSeek's inference code does
// the same). The 'expanded' form is the formula above as written, for comparison and long prompts
// (its attention is cheaper per key; the absorbed form's never touches per-head keys).
//
// DeepSeek rotates de-interleaved rope dims: (2i, 2i+1) become (i, i + qk_rope/2) before HF's
// rotate_half. Permuting the output rows of the projections that produce q_pe and k_pe, once at
// construction, does that de-interleave for free, so the library's rope op applies as is; q's
// heads are also laid out [q_pe | q_nope], because the rope op rotates the leading dims of a head.
// The scores are sums over dims, so the order of the dims, the same in q and k, does not change them.
import { current, type Backend } from './backend';
import { typeError } from './errors';
import { LatentKVCache, latentCacheState, latentRows } from './latent-kv-cache';
import { Linear, RmsNorm } from './models/blocks';
import { transpose } from './models/layout';
import type { BackendName, Tensor } from './types';
import { planMatmul } from './validate';
import type { AttentionPlan, ViewStrides } from './validate-attention';
import type { RopePlan } from './validate-llama-ops';
import {
  validateMla, validateMlaForward,
  type MlaCall, type MlaForm, type MlaPlan, type MultiHeadLatentAttentionConfig, type MultiHeadLatentAttentionWeights,
} from './validate-mla';

// HF builds q_a_layernorm and kv_a_layernorm as DeepseekV2RMSNorm(dim), leaving its default eps.
const NORM_EPS = 1e-6;

/** Options of `forward`. */
export interface MultiHeadLatentAttentionForwardOptions {
  /** Appends x's latent rows and attends to every cached token plus the new ones. */
  cache?: LatentKVCache;
  /** 'absorbed' (default): attention in the latent space; 'expanded': over per-head keys and values. */
  form?: MlaForm;
}

/** Row r of the result is row src(r) of w ([rows, cols] row-major). */
function permuteRows(w: Float32Array, rows: number, cols: number, src: (r: number) => number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) out.set(w.subarray(src(r) * cols, (src(r) + 1) * cols), r * cols);
  return out;
}

/** DeepSeek's view(d/2, 2).transpose: rope dim j reads dim 2j (first half) or 2(j - d/2) + 1 (second). */
function deinterleave(j: number, rope: number): number {
  return j < rope / 2 ? 2 * j : 2 * (j - rope / 2) + 1;
}

/** An attention() plan over strided views (no mask): causal, query i of entry b seeing keys j <= past + i. */
function viewsPlan(B: number, Hq: number, Hkv: number, Sq: number, past: number, D: number, Dv: number, scale: number,
  q: ViewStrides, k: ViewStrides, v: ViewStrides, y: ViewStrides): AttentionPlan {
  return Object.freeze({
    rank: 3, B, Hq, Hkv, Sq, Skv: Sq, past, total: past + Sq, D, Dv, scale, softcap: 0, causal: true, qkMode: -1,
    q, k, v, y, kNew: k, vNew: v, mask: null, kvValid: null, causalOffset: new Int32Array(B).fill(past),
    yDims: Object.freeze([B, Sq, Hq * Dv]), presentKeyDims: null, presentValueDims: null, qkDims: null,
  });
}

/**
 * Multi-head Latent Attention (DeepSeek-V2/V3) with Hugging Face's DeepseekV2Attention semantics,
 * causal, decoding through a LatentKVCache that holds one latent row per token. The layer keeps
 * its own copies of the weights (transposed to [in, out], rope rows reordered: about the size of
 * the given weights), so later changes to the caller's arrays do not change it. It uses the
 * backend active when it was created.
 * @example
 * const layer = new MultiHeadLatentAttention(config, weights);   // config.json keys, HF tensor names
 * const cache = new LatentKVCache({ batch: 1, kvLoraRank: config.kv_lora_rank, ropeDim: config.qk_rope_head_dim, maxSeqLen: 4096 });
 * let y = layer.forward({ data: prompt, dims: [1, 12, config.hidden_size] }, { cache });
 * y = layer.forward({ data: next, dims: [1, 1, config.hidden_size] }, { cache });   // one decode step
 */
export class MultiHeadLatentAttention {
  readonly hiddenSize: number;
  readonly numHeads: number;
  /** 0 without a query low-rank projection (a plain q_proj). */
  readonly qLoraRank: number;
  readonly kvLoraRank: number;
  readonly qkNopeHeadDim: number;
  readonly qkRopeHeadDim: number;
  readonly vHeadDim: number;
  /** (qk_nope_head_dim + qk_rope_head_dim)^-0.5, as HF's softmax_scale without rope scaling. */
  readonly scale: number;
  /** The backend this layer was created with. */
  readonly backend: BackendName;
  readonly #plan: MlaPlan;
  readonly #ops: Backend;
  /** [in, H * (rope + nope)]: per head [q_pe (de-interleaved) | q_nope]; in = q_lora_rank or hidden_size. */
  readonly #q: Linear;
  readonly #qA: Linear | null;
  readonly #qANorm: RmsNorm | null;
  /** [hidden, kv_lora + rope]: [c_kv | k_pe (de-interleaved)]. */
  readonly #kvA: Linear;
  readonly #kvANorm: RmsNorm;
  /** [H, qk_nope, kv_lora]: W_uk[h], rows of kv_b_proj as they are. */
  readonly #wUk: Float32Array;
  /** [H, kv_lora, v_head_dim]: W_uv[h] transposed. */
  readonly #wUv: Float32Array;
  readonly #o: Linear;

  /**
   * @param config DeepseekV2Config's keys: hidden_size, num_attention_heads, q_lora_rank (null: a
   *   plain q_proj), kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim (even), v_head_dim, rope_theta
   *   (default 10000), rms_norm_eps, rope_scaling (null only: YaRN is not supported yet),
   *   attention_bias (false only)
   * @param weights HF's tensors under `self_attn.`, [out, in]: q_proj.weight, or q_a_proj.weight,
   *   q_a_layernorm.weight and q_b_proj.weight; kv_a_proj_with_mqa.weight, kv_a_layernorm.weight,
   *   kv_b_proj.weight, o_proj.weight
   */
  constructor(config: MultiHeadLatentAttentionConfig, weights: MultiHeadLatentAttentionWeights) {
    const { plan, weights: w } = validateMla(config, weights);
    const { hidden, H, qLora, kvLora, nope, rope, vDim } = plan;
    this.#plan = plan;
    this.hiddenSize = hidden;
    this.numHeads = H;
    this.qLoraRank = qLora;
    this.kvLoraRank = kvLora;
    this.qkNopeHeadDim = nope;
    this.qkRopeHeadDim = rope;
    this.vHeadDim = vDim;
    this.scale = plan.scale;
    const ops = current();
    this.#ops = ops;
    this.backend = ops.name;

    const qk = nope + rope, W = kvLora + rope, qIn = qLora || hidden;
    const qRow = (r: number) => {
      const h = Math.floor(r / qk), j = r % qk;
      return h * qk + (j < rope ? nope + deinterleave(j, rope) : j - rope);
    };
    this.#q = new Linear(ops, transpose(permuteRows((w.qB ?? w.q) as Float32Array, H * qk, qIn, qRow), H * qk, qIn), null, qIn, H * qk);
    this.#qA = w.qA && new Linear(ops, transpose(w.qA, qLora, hidden), null, hidden, qLora);
    this.#qANorm = w.qANorm && new RmsNorm(ops, w.qANorm.slice(), NORM_EPS);
    const kvARow = (r: number) => (r < kvLora ? r : kvLora + deinterleave(r - kvLora, rope));
    this.#kvA = new Linear(ops, transpose(permuteRows(w.kvA, W, hidden, kvARow), W, hidden), null, hidden, W);
    this.#kvANorm = new RmsNorm(ops, w.kvANorm.slice(), NORM_EPS);
    this.#wUk = new Float32Array(H * nope * kvLora);
    this.#wUv = new Float32Array(H * kvLora * vDim);
    for (let h = 0; h < H; h++) {
      const block = h * (nope + vDim) * kvLora;
      this.#wUk.set(w.kvB.subarray(block, block + nope * kvLora), h * nope * kvLora);
      this.#wUv.set(transpose(w.kvB.subarray(block + nope * kvLora, block + (nope + vDim) * kvLora), vDim, kvLora), h * kvLora * vDim);
    }
    this.#o = new Linear(ops, transpose(w.o, hidden, H * vDim), null, H * vDim, hidden);
  }

  /**
   * Runs the layer on x, causally. With `opts.cache`, token i of this call sits at position
   * `cache.length + i`; its latent rows are appended to the cache, which then grows by S. An error
   * (full cache, wrong sizes, ...) is thrown before anything changes.
   * @param x [B, S, hidden_size]
   * @param opts cache (a LatentKVCache of batch B), form ('absorbed' or 'expanded'; both agree to float32 rounding)
   * @returns [B, S, hidden_size]
   */
  forward(x: Tensor, opts?: MultiHeadLatentAttentionForwardOptions): Tensor {
    const given = opts && typeof opts === 'object' ? (opts as { cache?: unknown }).cache : undefined;
    if (given !== undefined && !(given instanceof LatentKVCache)) throw typeError('opts.cache', 'a LatentKVCache', given);
    const cache = given ?? null;
    const { call, x: data } = validateMlaForward(this.#plan, x, opts, cache && latentCacheState(cache));
    const rows = cache && latentRows(cache);
    const y = this.#run(call, data, rows ? rows.data : null, cache ? cache.maxSeqLen : call.S);
    rows?.setLength(call.past + call.S);
    return { data: y, dims: [call.B, call.S, this.hiddenSize] };
  }

  /** keys: the cache's rows [B, cap, kv_lora + rope] (null: a buffer of this call's S rows). */
  #run(call: MlaCall, x: Float32Array, cacheRows: Float32Array | null, cap: number): Float32Array {
    const { B, S, past } = call;
    const { H, kvLora, rope, invFreq } = this.#plan;
    const ops = this.#ops, n = B * S, W = kvLora + rope;
    const positions = Int32Array.from({ length: S }, (_, i) => past + i);
    const rotate = (heads: number, D: number, src: Float32Array): Float32Array => {
      const plan: RopePlan = { B, S, H: heads, D, rotaryDim: rope, invFreq, sharedPositions: true };
      const out = new Float32Array(src.length);
      ops.rope(plan, src, positions, out);
      return out;
    };

    let qIn = x;
    if (this.#qA && this.#qANorm) {
      const a = this.#qA.forward(x, n);
      qIn = new Float32Array(a.length);
      this.#qANorm.forward(a, n, qIn);
    }
    const q = rotate(H, this.qkNopeHeadDim + rope, this.#q.forward(qIn, n));

    // The new tokens' rows [c | rope(k_pe)], written where the attention reads them.
    const kv = this.#kvA.forward(x, n);
    const cKv = new Float32Array(n * kvLora), kPe = new Float32Array(n * rope);
    for (let r = 0; r < n; r++) {
      cKv.set(kv.subarray(r * W, r * W + kvLora), r * kvLora);
      kPe.set(kv.subarray(r * W + kvLora, (r + 1) * W), r * rope);
    }
    const c = new Float32Array(n * kvLora);
    this.#kvANorm.forward(cKv, n, c);
    const kRot = rotate(1, rope, kPe);
    const keys = cacheRows ?? new Float32Array(n * W);
    for (let b = 0; b < B; b++) {
      for (let s = 0; s < S; s++) {
        const r = b * S + s, dst = (b * cap + past + s) * W;
        keys.set(c.subarray(r * kvLora, (r + 1) * kvLora), dst);
        keys.set(kRot.subarray(r * rope, (r + 1) * rope), dst + kvLora);
      }
    }
    const heads = call.form === 'absorbed' ? this.#absorbed(call, q, keys, cap) : this.#expanded(call, q, keys, cap);
    return this.#o.forward(heads, n);
  }

  /** Attention in the latent space: MQA of H query heads over the key rows, in place. Returns [B*S, H * v_head_dim]. */
  #absorbed(call: MlaCall, q: Float32Array, keys: Float32Array, cap: number): Float32Array {
    const { B, S, past } = call;
    const { H, kvLora, nope, rope, vDim, scale } = this.#plan;
    const ops = this.#ops, n = B * S, qk = nope + rope, W = kvLora + rope;
    // q_lat[h] = q_nope[h] W_uk[h]: [H, B*S, nope] @ [H, nope, kv_lora].
    const qNope = new Float32Array(H * n * nope);
    for (let r = 0; r < n; r++) {
      for (let h = 0; h < H; h++) qNope.set(q.subarray((r * H + h) * qk + rope, (r * H + h + 1) * qk), (h * n + r) * nope);
    }
    const qLat = new Float32Array(H * n * kvLora);
    ops.matmul(planMatmul([H, n, nope], [H, nope, kvLora], false, false), qNope, this.#wUk, null, qLat);
    // Queries [H, B, S, kv_lora + rope]: [q_lat | q_pe], laid out like the key rows [c | k_pe].
    const query = new Float32Array(H * n * W);
    for (let h = 0; h < H; h++) {
      for (let r = 0; r < n; r++) {
        const dst = (h * n + r) * W;
        query.set(qLat.subarray((h * n + r) * kvLora, (h * n + r + 1) * kvLora), dst);
        query.set(q.subarray((r * H + h) * qk, (r * H + h) * qk + rope), dst + kvLora);
      }
    }
    // One kv head (sh unused): keys are whole rows, values their first kv_lora floats.
    const rows: ViewStrides = { sb: cap * W, sh: 0, st: W };
    const latent = (D: number): ViewStrides => ({ sb: S * D, sh: n * D, st: D });
    const oLat = new Float32Array(H * n * kvLora);
    ops.attention(viewsPlan(B, H, 1, S, past, W, kvLora, scale, latent(W), rows, rows, latent(kvLora)), query, keys, keys, oLat, null);
    // o[h] = o_lat[h] W_uv[h]^T: [H, B*S, kv_lora] @ [H, kv_lora, v], then heads side by side per token.
    const o = new Float32Array(H * n * vDim);
    ops.matmul(planMatmul([H, n, kvLora], [H, kvLora, vDim], false, false), oLat, this.#wUv, null, o);
    const heads = new Float32Array(n * H * vDim);
    for (let h = 0; h < H; h++) {
      for (let r = 0; r < n; r++) heads.set(o.subarray((h * n + r) * vDim, (h * n + r + 1) * vDim), (r * H + h) * vDim);
    }
    return heads;
  }

  /** The formula as written: per-head keys [k_pe | k_nope] and values from every cached c. Returns [B*S, H * v_head_dim]. */
  #expanded(call: MlaCall, q: Float32Array, keys: Float32Array, cap: number): Float32Array {
    const { B, S, past } = call;
    const { H, kvLora, nope, rope, vDim, scale } = this.#plan;
    const ops = this.#ops, total = past + S, N = B * total, qk = nope + rope, W = kvLora + rope;
    const c = new Float32Array(N * kvLora);
    for (let j = 0; j < N; j++) {
      const src = (Math.floor(j / total) * cap + (j % total)) * W;
      c.set(keys.subarray(src, src + kvLora), j * kvLora);
    }
    // k_nope[h] = c W_uk[h]^T, v[h] = c W_uv[h]^T: [H, B*total, nope] and [H, B*total, v].
    const kNope = new Float32Array(H * N * nope), v = new Float32Array(H * N * vDim);
    ops.matmul(planMatmul([N, kvLora], [H, nope, kvLora], false, true), c, this.#wUk, null, kNope);
    ops.matmul(planMatmul([N, kvLora], [H, kvLora, vDim], false, false), c, this.#wUv, null, v);
    const k = new Float32Array(H * N * qk);
    for (let h = 0; h < H; h++) {
      for (let j = 0; j < N; j++) {
        const src = (Math.floor(j / total) * cap + (j % total)) * W + kvLora, dst = (h * N + j) * qk;
        k.set(keys.subarray(src, src + rope), dst);
        k.set(kNope.subarray((h * N + j) * nope, (h * N + j + 1) * nope), dst + rope);
      }
    }
    const perHead = (D: number): ViewStrides => ({ sb: total * D, sh: N * D, st: D });
    const tokens = (D: number): ViewStrides => ({ sb: S * H * D, sh: D, st: H * D });
    const heads = new Float32Array(B * S * H * vDim);
    ops.attention(viewsPlan(B, H, H, S, past, qk, vDim, scale, tokens(qk), perHead(qk), perHead(vDim), tokens(vDim)), q, k, v, heads, null);
    return heads;
  }
}
