// The benchmark's workloads (issue 5's table), one entry each, in the order they run.
//
// Each entry says what it needs from the package (`needs`: exports that must all exist; a workload is
// skipped with the reason printed while its API has not landed), how much work one call is (`unit` + `amount`:
// flops, bytes read, or tokens), how the JS backend is run (`js`), how to build its inputs
// (`data`), how to call the package (`ours`), a float64 reference for single output elements
// (`spot`, so every variant is checked even where JS is too slow to compare against) and how to
// run the same thing on onnxruntime (`peer`).
// Inputs are seeded, so every variant and every run sees the same numbers.

/** Deterministic uniform floats in [-scale, scale) (mulberry32). */
export function randomArray(n, seed, scale = 1) {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

const tensor = (dims, seed, scale = 1) => ({ data: randomArray(dims.reduce((a, b) => a * b, 1), seed, scale), dims });

/** [B, H, S, D] -> [B, S, H*D] (the 3-D layout onnxruntime's GroupQueryAttention takes). */
export function toBSHD(data, B, H, S, D) {
  const out = new Float32Array(data.length);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let s = 0; s < S; s++) {
        const src = ((b * H + h) * S + s) * D;
        out.set(data.subarray(src, src + D), ((b * S + s) * H + h) * D);
      }
    }
  }
  return out;
}

// Float64 reference for one output element of attention: query row `qRow` (length D) against keys
// 0..visible-1 of one kv head (rows of length D starting at kOff / vOff), output column `col`.
function attentionRef(q, qRow, k, v, kvOff, visible, D, col) {
  const scale = 1 / Math.sqrt(D);
  const scores = new Float64Array(visible);
  let max = -Infinity;
  for (let j = 0; j < visible; j++) {
    let dot = 0;
    for (let t = 0; t < D; t++) dot += q[qRow + t] * k[kvOff + j * D + t];
    scores[j] = dot * scale;
    if (scores[j] > max) max = scores[j];
  }
  let sum = 0, acc = 0;
  for (let j = 0; j < visible; j++) {
    const p = Math.exp(scores[j] - max);
    sum += p;
    acc += p * v[kvOff + j * D + col];
  }
  return acc / sum;
}

function matmulWorkload({ id, title, m, k, n, js, bias = false, biasAsInit = false }) {
  return {
    id, title, group: 'matmul', needs: bias ? ['linear'] : ['matmul'],
    unit: 'flops', amount: 2 * m * k * n, js, tol: 1e-4,
    data: () => ({ a: tensor([m, k], 1), b: tensor([k, n], 2), bias: bias ? tensor([n], 3) : null }),
    ours: (api, d) => (bias ? () => api.linear(d.a, d.b, d.bias).data : () => api.matmul(d.a, d.b).data),
    spot: (d) => (i) => {
      const row = Math.floor(i / n), col = i % n;
      let acc = d.bias ? d.bias.data[col] : 0;
      for (let p = 0; p < k; p++) acc += d.a.data[row * k + p] * d.b.data[p * n + col];
      return acc;
    },
    peer: (ort, d) => (bias
      ? ort.gemm({ m, k, n, a: d.a.data, b: d.b.data, bias: d.bias.data, weightsAsInitializers: biasAsInit })
      : ort.matmul({ m, k, n, a: d.a.data, b: d.b.data })),
  };
}

// Causal prefill with q/k/v [B, H, S, D]; onnxruntime's GroupQueryAttention (always causal) takes the
// same values as [B, S, H*D] and returns [B, S, Hq*D], turned back to [B, Hq, S, D] for the check.
function prefillWorkload({ id, title, B, Hq, Hkv, S, D, js, child = false }) {
  return {
    id, title, group: 'attention', needs: ['attention'], child,
    unit: 'flops', amount: (4 * B * Hq * S * S * D) / 2, js, tol: 2e-4,
    data: () => ({ q: tensor([B, Hq, S, D], 11), k: tensor([B, Hkv, S, D], 12), v: tensor([B, Hkv, S, D], 13) }),
    ours: (api, d) => () => api.attention(d.q, d.k, d.v, { isCausal: true }).y.data,
    spot: (d) => (i) => {
      const col = i % D, s = Math.floor(i / D) % S, bh = Math.floor(i / (D * S));
      const b = Math.floor(bh / Hq), hk = Math.floor((bh % Hq) / (Hq / Hkv));
      return attentionRef(d.q.data, (bh * S + s) * D, d.k.data, d.v.data, (b * Hkv + hk) * S * D, s + 1, D, col);
    },
    peer: (ort, d) => ort.groupQueryAttention({
      B, Hq, Hkv, S, D,
      q: toBSHD(d.q.data, B, Hq, S, D), k: toBSHD(d.k.data, B, Hkv, S, D), v: toBSHD(d.v.data, B, Hkv, S, D),
      outputToOurs: (y) => toBSHD(y, B, S, Hq, D),
    }),
  };
}

// One new token per sequence against a cache of `past` positions. Ours reads the whole cache in
// place: q [B, Hq, 1, D] against k/v [B, Hkv, past + 1, D] (the new token's row already appended,
// as a KV cache holds it), no copy. onnxruntime runs its fastest form: Attention-23 given
// past_key/past_value (it writes present = past + new) or the same in-place call; the faster wins.
//
// The ONNX form (`form: 'past'`) is what a drop-in ONNX backend gets: the past as pastKey/pastValue,
// the new token as k/v, present = past + new written out, against onnxruntime's same call.
function decodeWorkload({ id, title, B, Hq, Hkv, past, D, js, form = 'cache' }) {
  const T = past + 1;
  const rows = (x, from, to) => {
    const out = new Float32Array(B * Hkv * (to - from) * D);
    for (let g = 0; g < B * Hkv; g++) out.set(x.subarray((g * T + from) * D, (g * T + to) * D), g * (to - from) * D);
    return out;
  };
  return {
    id, title, group: 'attention', needs: ['attention'],
    unit: 'bytes', amount: 2 * B * Hkv * T * D * 4, js, tol: 2e-4,
    data: () => {
      const d = { q: tensor([B, Hq, 1, D], 21), k: tensor([B, Hkv, T, D], 22), v: tensor([B, Hkv, T, D], 23) };
      if (form !== 'past') return d;
      return {
        ...d,
        k1: { data: rows(d.k.data, past, T), dims: [B, Hkv, 1, D] }, v1: { data: rows(d.v.data, past, T), dims: [B, Hkv, 1, D] },
        pastKey: { data: rows(d.k.data, 0, past), dims: [B, Hkv, past, D] }, pastValue: { data: rows(d.v.data, 0, past), dims: [B, Hkv, past, D] },
      };
    },
    ours: form === 'past'
      ? (api, d) => () => api.attention(d.q, d.k1, d.v1, { pastKey: d.pastKey, pastValue: d.pastValue }).y.data
      : (api, d) => () => api.attention(d.q, d.k, d.v).y.data,
    spot: (d) => (i) => {
      const col = i % D, bh = Math.floor(i / D);
      const b = Math.floor(bh / Hq), hk = Math.floor((bh % Hq) / (Hq / Hkv));
      return attentionRef(d.q.data, bh * D, d.k.data, d.v.data, (b * Hkv + hk) * T * D, T, D, col);
    },
    peer: (ort, d) => ort.decodeAttention({ B, Hq, Hkv, past, D, q: d.q.data, k: d.k.data, v: d.v.data })
      .filter((c) => form !== 'past' || /past_key/.test(c.label)),
  };
}

// One decode step of a MultiHeadAttention layer over a KVCache of `past` positions: x [B, 1, 64]
// -> q/k/v projections (no output projection) -> the new key/value into the cache -> attention
// over past + 1 keys; rolled back after each step. The projections are small, so the step is
// bound by reading the cache: `cacheDtype` F32 vs F16 measures what the half-precision cache
// saves (amount: the cache bytes read). `baseline` names the F32 workload it is compared with.
function cacheDecodeWorkload({ id, title, B, Hq, Hkv, past, D, cacheDtype, baseline }) {
  const dIn = 64, T = past + 1, size = cacheDtype === 'F32' ? 4 : 2;
  return {
    id, title, group: 'attention', needs: ['MultiHeadAttention', 'KVCache'], baseline,
    unit: 'bytes', amount: 2 * B * Hkv * T * D * size,
    // Prefilling 4096 positions in JS takes minutes.
    js: { mode: 'skip', note: 'the prefill of the cache takes minutes in JS' }, tol: 2e-4,
    setupNote: `${cacheDtype} cache, prefilled once`,
    data: () => ({
      prompt: tensor([B, past, dIn], 51), next: tensor([B, 1, dIn], 52),
      wq: tensor([dIn, Hq * D], 53, 0.1), wk: tensor([dIn, Hkv * D], 54, 0.1), wv: tensor([dIn, Hkv * D], 55, 0.1),
    }),
    ours: (api, d) => {
      const layer = new api.MultiHeadAttention({ numHeads: Hq, numKVHeads: Hkv, causal: true }, { wq: d.wq, wk: d.wk, wv: d.wv });
      const cache = new api.KVCache({ batch: B, numKVHeads: Hkv, headDim: D, maxSeqLen: T, dtype: cacheDtype });
      layer.forward(d.prompt, { cache });
      return () => {
        const y = layer.forward(d.next, { cache }).data;
        cache.truncate(past);
        return y;
      };
    },
  };
}

// The seed demo: x [32, 40, 512] -> q, k, v = x @ W (512 -> 64 each) -> causal single-head
// attention -> [32, 40, 64]. The whole layer runs in one MultiHeadAttention call when the class
// exists; until then it is composed from linear() and attention() (and labelled so).
const A5 = { B: 32, S: 40, dIn: 512, D: 64 };
function seedDemoWorkload() {
  const { B, S, dIn, D } = A5;
  const flops = 3 * 2 * B * S * dIn * D + (4 * B * S * S * D) / 2;
  return {
    id: 'A5', title: 'seed demo x[32,40,512] -> 3x proj 64 + causal attn', group: 'attention',
    needs: ['linear', 'attention'],
    unit: 'flops', amount: flops, js: { mode: 'full' }, tol: 2e-4,
    data: () => ({
      x: tensor([B, S, dIn], 31),
      wq: tensor([dIn, D], 32, 0.05), wk: tensor([dIn, D], 33, 0.05), wv: tensor([dIn, D], 34, 0.05),
    }),
    ours: (api, d) => {
      if (typeof api.MultiHeadAttention === 'function') {
        const layer = new api.MultiHeadAttention({ numHeads: 1, causal: true }, { wq: d.wq, wk: d.wk, wv: d.wv });
        return () => layer.forward(d.x).data;
      }
      // [B, S, D] is the 3-D attention layout with one head.
      const opts = { isCausal: true, qNumHeads: 1, kvNumHeads: 1 };
      return () => api.attention(api.linear(d.x, d.wq), api.linear(d.x, d.wk), api.linear(d.x, d.wv), opts).y.data;
    },
    spot: (d) => (i) => {
      const col = i % D, s = Math.floor(i / D) % S, b = Math.floor(i / (D * S));
      const project = (w, t) => {
        const row = new Float64Array(D);
        for (let c = 0; c < D; c++) {
          let acc = 0;
          for (let p = 0; p < dIn; p++) acc += d.x.data[(b * S + t) * dIn + p] * w.data[p * D + c];
          row[c] = acc;
        }
        return row;
      };
      const q = project(d.wq, s);
      const k = new Float64Array((s + 1) * D), v = new Float64Array((s + 1) * D);
      for (let t = 0; t <= s; t++) {
        k.set(project(d.wk, t), t * D);
        v.set(project(d.wv, t), t * D);
      }
      return attentionRef(q, 0, k, v, 0, s + 1, D, col);
    },
    variantLabel: (api) => (typeof api.MultiHeadAttention === 'function' ? 'MultiHeadAttention' : 'linear x3 + attention'),
    peer: (ort, d) => ort.seedDemo({ ...A5, x: d.x.data, wq: d.wq.data, wk: d.wk.data, wv: d.wv.data }),
  };
}

// Decode tokens/s at a fixed context: the prompt is fed once, then one op = one new token through
// the model followed by a rollback (truncate) to the same context, so every timed step sees the
// same cache length. Decode streams every weight once per token (plus the KV cache), so the
// machine's limit is read bandwidth / bytes per token.
// One decode step of a model built by `build(api)` (random weights in `dtype`), `context` tokens
// already cached, rolled back after each step. Bytes per token: every matrix once in the weights'
// precision (the LM head included; an embedding row is not counted), norm weights and biases in
// float32, and the float32 KV cache of every layer.
function decodeWorkload_({ id, title, group, needs, build, params, matrixParams, cacheFloatsPerToken, vocab, context, js, tol }) {
  return (dtype) => {
    const wbytes = dtype === 'F32' ? 4 : 2;
    const bytesPerToken = matrixParams * wbytes + (params - matrixParams) * 4 + cacheFloatsPerToken * context * 4;
    return {
      id, title: `${title}, ${dtype}`, group, needs, unit: 'tokens', amount: 1, bytesPerToken, js, tol,
      setupNote: `${(params / 1e6).toFixed(0)}M params in ${dtype}, random weights, context ${context}`,
      data: () => ({ prompt: Int32Array.from({ length: context }, (_, i) => (i * 7919) % vocab), next: Int32Array.of(42) }),
      ours: (api, d) => {
        const decoder = build(api, dtype).decoder(context + 1);
        decoder.append(d.prompt);
        return () => {
          const logits = decoder.append(d.next).data;
          decoder.truncate(context);
          return logits;
        };
      },
    };
  };
}

function gptWorkload({ id, title, config, context, js, dtype }) {
  const { n_embd: C, n_layer: L, vocab_size: V, n_positions: P } = config;
  // wte (read once more as the tied head), 12 C^2 of matrices per layer; wpe is one row per token.
  const matrixParams = V * C + L * 12 * C * C;
  const vectorParams = L * 13 * C + 2 * C;
  return decodeWorkload_({
    id, title, group: 'gpt', needs: ['GPT'], vocab: V, context, js, tol: dtype === 'F32' ? 1e-3 : 2e-2,
    build: (api, dt) => api.GPT.random(config, 1234, { dtype: dt }),
    params: matrixParams + vectorParams, matrixParams, cacheFloatsPerToken: L * 2 * C,
  })(dtype);
}

function llamaWorkload({ id, title, config, context, js, dtype }) {
  const { hidden_size: C, num_hidden_layers: L, vocab_size: V, num_attention_heads: H, num_key_value_heads: Hkv, intermediate_size: F } = config;
  const D = C / H;
  const perLayer = C * (H + 2 * Hkv) * D + H * D * C + 3 * C * F;
  // The head (untied) and every layer's matrices; the embedding is one row per token.
  const matrixParams = V * C + L * perLayer;
  return decodeWorkload_({
    id, title, group: 'gpt', needs: ['Llama'], vocab: V, context, js, tol: 2e-2,
    build: (api, dt) => api.Llama.random(config, 1234, { dtype: dt }),
    params: matrixParams + L * 2 * C + C, matrixParams, cacheFloatsPerToken: L * 2 * Hkv * D,
  })(dtype);
}

// G3: 8 prompts of 16 tokens, 16 new tokens each (greedy), per generated token: `batched` runs one
// generate(prompts[]), otherwise the eight run one after another. Same tokens either way.
function batchedWorkload({ id, title, config, batched, js, baseline }) {
  const prompts = Array.from({ length: 8 }, (_, b) => Int32Array.from({ length: 16 }, (_, i) => (b * 131 + i * 7919) % config.vocab_size));
  return {
    id, title, group: 'gpt', needs: ['GPT'], unit: 'tokens', amount: 8 * 16, js, tol: 0, baseline,
    setupNote: 'GPT-2 small shape, F16, 8 prompts x (16 + 16 new) tokens',
    data: () => ({ prompts }),
    ours: (api, d) => {
      const model = api.GPT.random(config, 1234, { dtype: 'F16' });
      return batched
        ? () => Int32Array.from(model.generate(d.prompts, { maxNewTokens: 16 }).flatMap((t) => [...t]))
        : () => Int32Array.from(d.prompts.flatMap((p) => [...model.generate(p, { maxNewTokens: 16 })]));
    },
  };
}

// The attention half of a GQA model's decode step, built from the layers: `layers` x
// MultiHeadAttention (q/k/v/o projections with biases, 12 query heads over 4 kv heads) each with
// its KVCache, one token in, rolled back after each step like gptWorkload. No MLP or LayerNorm:
// the GPT class is GPT-2 (multi-head only), so this is the GQA configuration the package runs.
function gqaStackWorkload({ id, title, layers, width, heads, kvHeads, context, js }) {
  const hd = width / heads, kvw = kvHeads * hd;
  const perLayer = width * (width + 2 * kvw) + width * width + 2 * width + 2 * kvw;
  const bytesPerToken = layers * (perLayer * 4 + 2 * context * kvw * 4);
  return {
    id, title, group: 'layers', needs: ['MultiHeadAttention', 'KVCache'],
    unit: 'tokens', amount: 1, bytesPerToken, js, tol: 2e-4,
    setupNote: `${layers} layers, context ${context}`,
    data: () => ({
      prompt: tensor([1, context, width], 41),
      next: tensor([1, 1, width], 42),
      weights: Array.from({ length: layers }, (_, l) => ({
        wq: tensor([width, width], 100 + l, 0.05), wk: tensor([width, kvw], 200 + l, 0.05),
        wv: tensor([width, kvw], 300 + l, 0.05), wo: tensor([width, width], 400 + l, 0.05),
        bq: tensor([width], 500 + l, 0.02), bk: tensor([kvw], 600 + l, 0.02),
        bv: tensor([kvw], 700 + l, 0.02), bo: tensor([width], 800 + l, 0.02),
      })),
    }),
    ours: (api, d) => {
      const stack = d.weights.map((w) => ({
        layer: new api.MultiHeadAttention({ numHeads: heads, numKVHeads: kvHeads, causal: true }, w),
        cache: new api.KVCache({ batch: 1, numKVHeads: kvHeads, headDim: hd, maxSeqLen: context + 1 }),
      }));
      const step = (x) => {
        for (const { layer, cache } of stack) x = layer.forward(x, { cache });
        return x;
      };
      step(d.prompt);
      return () => {
        const y = step(d.next).data;
        for (const { cache } of stack) cache.truncate(context);
        return y;
      };
    },
  };
}

// DeepSeek-V2-Lite's attention layer (Multi-head Latent Attention) decoding one token against
// `context` cached tokens, rolled back after each step like gptWorkload. 'mla': the layer with its
// LatentKVCache, one row of kv_lora_rank + qk_rope_head_dim floats per token, attention in the latent
// space. 'mha': the same sizes as a plain MultiHeadAttention with a KVCache of per-head keys and
// values (16 heads of 192: the class has one head dim, so values are 192 wide, not 128), i.e. what
// caching the expanded keys/values costs. The prompt is fed once at setup (MLA: the expanded form,
// the faster one for a long prompt).
const V2_LITE = {
  hidden_size: 2048, num_attention_heads: 16, q_lora_rank: null, kv_lora_rank: 512, qk_nope_head_dim: 128,
  qk_rope_head_dim: 64, v_head_dim: 128, rope_theta: 10000,
};
function latentDecodeWorkload({ id, title, config, context, kind, js }) {
  const { hidden_size: E, num_attention_heads: H, kv_lora_rank: kvl, qk_nope_head_dim: nope, qk_rope_head_dim: r, v_head_dim: vd } = config;
  const qk = nope + r, T = context + 1;
  const weightFloats = kind === 'mla' ? H * qk * E + (kvl + r) * E + H * (nope + vd) * kvl + E * H * vd : 4 * E * H * qk;
  const cacheBytes = kind === 'mla' ? T * (kvl + r) * 4 : 2 * T * H * qk * 4;
  return {
    id, title, group: 'layers', needs: kind === 'mla' ? ['MultiHeadLatentAttention', 'LatentKVCache'] : ['MultiHeadAttention', 'KVCache'],
    unit: 'tokens', amount: 1, bytesPerToken: weightFloats * 4 + (cacheBytes * context) / T, js, tol: 2e-4,
    setupNote: `context ${context}; cache ${(cacheBytes / 2 ** 20).toFixed(1)} MiB (${cacheBytes} bytes for ${T} tokens)`,
    data: () => {
      const w = (dims, seed) => tensor(dims, seed, Math.sqrt(3 / dims[1]));
      const d = { prompt: tensor([1, context, E], 51), next: tensor([1, 1, E], 52) };
      if (kind === 'mla') {
        const norm = tensor([kvl], 55, 0.1);
        norm.data.forEach((v, i, a) => { a[i] = 1 + v; });
        d.weights = {
          'q_proj.weight': w([H * qk, E], 53), 'kv_a_proj_with_mqa.weight': w([kvl + r, E], 54), 'kv_a_layernorm.weight': norm,
          'kv_b_proj.weight': w([H * (nope + vd), kvl], 56), 'o_proj.weight': w([E, H * vd], 57),
        };
      } else {
        const t = (seed) => tensor([E, H * qk], seed, Math.sqrt(3 / E));
        d.weights = { wq: t(53), wk: t(54), wv: t(56), wo: tensor([H * qk, E], 57, Math.sqrt(3 / (H * qk))) };
      }
      return d;
    },
    ours: (api, d) => {
      if (kind === 'mla') {
        const layer = new api.MultiHeadLatentAttention(config, d.weights);
        const cache = new api.LatentKVCache({ batch: 1, kvLoraRank: kvl, ropeDim: r, maxSeqLen: T });
        layer.forward(d.prompt, { cache, form: 'expanded' });
        return () => { const y = layer.forward(d.next, { cache }).data; cache.truncate(context); return y; };
      }
      const layer = new api.MultiHeadAttention({ numHeads: H, causal: true, rope: { theta: config.rope_theta } }, d.weights);
      const cache = new api.KVCache({ batch: 1, numKVHeads: H, headDim: qk, maxSeqLen: T });
      layer.forward(d.prompt, { cache });
      return () => { const y = layer.forward(d.next, { cache }).data; cache.truncate(context); return y; };
    },
  };
}

const GPT2_SMALL = { vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12, layer_norm_epsilon: 1e-5 };
const TINYLLAMA = {
  vocab_size: 32000, hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 22, num_attention_heads: 32,
  num_key_value_heads: 4, rms_norm_eps: 1e-5, rope_theta: 10000, max_position_embeddings: 2048, tie_word_embeddings: false,
};

/**
 * js.mode: 'full' = same rounds as native; 'once' = a single timed call (too slow for more, see
 * note); 'skip' = not run unless --js-all (note says why).
 */
export const workloads = [
  matmulWorkload({ id: 'M1', title: 'matmul 1024^3', m: 1024, k: 1024, n: 1024, js: { mode: 'full' } }),
  matmulWorkload({ id: 'M2', title: 'matmul 150x4 @ 4x6 (per call)', m: 150, k: 4, n: 6, js: { mode: 'full' } }),
  matmulWorkload({
    id: 'M3s', title: 'matmul 2048^3', m: 2048, k: 2048, n: 2048,
    js: { mode: 'skip', note: '17 GFLOP: ~4 s per JS call' },
  }),
  matmulWorkload({
    id: 'M4', title: 'linear [1280,512]@[512,64]+b', m: 1280, k: 512, n: 64, bias: true, biasAsInit: true,
    js: { mode: 'full' },
  }),
  prefillWorkload({
    id: 'A1', title: 'causal MHA prefill B1 H32 S1024 D128', B: 1, Hq: 32, Hkv: 32, S: 1024, D: 128,
    js: { mode: 'once', note: '8.6 GFLOP: seconds per JS call' },
  }),
  prefillWorkload({
    id: 'A2', title: 'causal GQA prefill Hq32 Hkv8 S2048 D128', B: 1, Hq: 32, Hkv: 8, S: 2048, D: 128,
    js: { mode: 'skip', note: '34 GFLOP: ~20 s per JS call' },
  }),
  decodeWorkload({ id: 'A3', title: 'GQA decode 1 token, past 4096, Hq32 Hkv8 D128', B: 1, Hq: 32, Hkv: 8, past: 4096, D: 128, js: { mode: 'full' } }),
  decodeWorkload({ id: 'A4', title: 'batched decode B8, past 1024, Hq32 Hkv8 D128', B: 8, Hq: 32, Hkv: 8, past: 1024, D: 128, js: { mode: 'full' } }),
  decodeWorkload({ id: 'A3p', title: 'A3, ONNX form: pastKey/pastValue in, present out', B: 1, Hq: 32, Hkv: 8, past: 4096, D: 128, js: { mode: 'full' }, form: 'past' }),
  decodeWorkload({ id: 'A4p', title: 'A4, ONNX form: pastKey/pastValue in, present out', B: 8, Hq: 32, Hkv: 8, past: 1024, D: 128, js: { mode: 'full' }, form: 'past' }),
  cacheDecodeWorkload({ id: 'A3k', title: 'A3 through MultiHeadAttention + KVCache, F32 cache', B: 1, Hq: 32, Hkv: 8, past: 4096, D: 128, cacheDtype: 'F32' }),
  cacheDecodeWorkload({ id: 'A3h', title: 'A3k with an F16 cache', B: 1, Hq: 32, Hkv: 8, past: 4096, D: 128, cacheDtype: 'F16', baseline: 'A3k' }),
  cacheDecodeWorkload({ id: 'A4k', title: 'A4 through MultiHeadAttention + KVCache, F32 cache', B: 8, Hq: 32, Hkv: 8, past: 1024, D: 128, cacheDtype: 'F32' }),
  cacheDecodeWorkload({ id: 'A4h', title: 'A4k with an F16 cache', B: 8, Hq: 32, Hkv: 8, past: 1024, D: 128, cacheDtype: 'F16', baseline: 'A4k' }),
  seedDemoWorkload(),
  prefillWorkload({
    id: 'A6', title: 'long context B1 H8 S8192 D64 causal', B: 1, Hq: 8, Hkv: 8, S: 8192, D: 64, child: true,
    js: { mode: 'skip', note: '69 GFLOP: ~40 s per JS call' },
  }),
  gptWorkload({
    id: 'G1', title: 'GPT-2 small decode (12 x 768, 12 heads)', config: GPT2_SMALL, context: 32, dtype: 'F32',
    js: { mode: 'full' },
  }),
  gptWorkload({
    id: 'G1h', title: 'GPT-2 small decode (12 x 768, 12 heads)', config: GPT2_SMALL, context: 32, dtype: 'F16',
    js: { mode: 'full' },
  }),
  batchedWorkload({
    id: 'G3', title: 'batched: ONE generate(prompts[]) of 8 prompts', config: GPT2_SMALL, batched: true, baseline: 'G3s',
    js: { mode: 'skip', note: '256 decode steps of GPT-2 small: a minute in JS' },
  }),
  batchedWorkload({
    id: 'G3s', title: 'G3\'s 8 prompts generated one after another', config: GPT2_SMALL, batched: false,
    js: { mode: 'skip', note: '256 decode steps of GPT-2 small: a minute in JS' },
  }),
  llamaWorkload({
    id: 'G4', title: 'TinyLlama-1.1B-shaped decode (22 x 2048, 32 q / 4 kv heads, 5632 MLP)', config: TINYLLAMA, context: 32,
    dtype: 'F16', js: { mode: 'once', note: '2.2 GB of F16 weights per token: seconds per JS step' },
  }),
  gqaStackWorkload({
    id: 'G2', title: 'GQA decode, attention layers (768, 12 q / 4 kv heads)', layers: 12, width: 768, heads: 12, kvHeads: 4,
    context: 128, js: { mode: 'full' },
  }),
  latentDecodeWorkload({
    id: 'L1', title: 'MLA decode, DeepSeek-V2-Lite layer (2048, 16 heads, kv_lora 512), latent cache 4096', config: V2_LITE,
    context: 4096, kind: 'mla', js: { mode: 'skip', note: 'setup feeds a 4096-token prompt: ~90 GFLOP, a minute or more in JS' },
  }),
  latentDecodeWorkload({
    id: 'L1m', title: 'L1 as plain MHA: per-head K/V cache (16 x 192) 4096', config: V2_LITE,
    context: 4096, kind: 'mha', js: { mode: 'skip', note: 'setup feeds a 4096-token prompt: ~90 GFLOP, a minute or more in JS' },
  }),
];

export const units = {
  flops: { rate: 'GFLOP/s', scale: 1e-9, limit: 'peak' },
  bytes: { rate: 'GB/s', scale: 1e-9, limit: 'bandwidth' },
  tokens: { rate: 'tok/s', scale: 1, limit: 'bandwidth' },
};
