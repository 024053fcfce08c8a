// Half-precision KV caches: new KVCache({ ..., dtype: 'F16' | 'BF16' }) and the models' kvDtype.
// What is claimed, and checked here on both backends:
// - the cache stores each key and value rounded to nearest even (an oracle written here, in float64);
// - attention reads those stored values exactly: decoding through the cache is float32 attention
//   over them, within the float32 bound of kv-cache.test.ts of a float64 reference;
// - against an F32 cache the layer output moves by the rounding alone: bounds below, from the
//   measured differences (README "Half-precision KV cache").
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { expect, it } from 'vitest';
import { api, forEachBackend } from './helpers/backends';
import { attentionRef } from './helpers/attention-ref';
import { randomWeights, sliceSeq, type LayerSpec } from './helpers/layers';
import { expectClose, matmulRef, randomArray } from './helpers/oracle';

type Half = 'F16' | 'BF16';

/** x rounded to F16 or BF16, nearest even, in float64 (x a float32 value; overflow gives infinity). */
function roundHalf(x: number, dtype: Half): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const [mant, minExp, maxFinite] = dtype === 'F16' ? [10, -14, 65504] : [7, -126, 3.3895313892515355e38];
  const e = Math.max(Math.floor(Math.log2(Math.abs(x))), minExp);
  const ulp = 2 ** (e - mant), q = x / ulp, r = Math.round(q);
  // Math.round rounds halves up; ties go to even instead.
  const n = Math.abs(q - Math.trunc(q)) === 0.5 ? 2 * Math.round(q / 2) : r;
  const y = n * ulp;
  return Math.abs(y) > maxFinite ? Math.sign(y) * Infinity : y;
}

const spec: LayerSpec = { dIn: 24, numHeads: 8, numKVHeads: 2, headDim: 16, dOut: 0, biases: true };

/** A layer without output projection (y is the attention output) and its cache. */
function setup(dtype: 'F32' | Half, B = 2, maxSeqLen = 40) {
  const w = randomWeights(spec, 3);
  // Larger projections than randomWeights' give scores of a few units, so rounding moves softmax weights.
  for (const m of [w.wq, w.wk]) m.data = m.data.map((v) => v * 3);
  const layer = new api.MultiHeadAttention({ numHeads: spec.numHeads, numKVHeads: spec.numKVHeads, causal: true }, w);
  const cache = new api.KVCache({ batch: B, numKVHeads: spec.numKVHeads, headDim: spec.headDim, maxSeqLen, dtype });
  return { w, layer, cache };
}

/** Runs x (B, T, dIn) through layer + cache: a prefill of P positions, then one position at a time. */
function decode(layer: InstanceType<typeof api.MultiHeadAttention>, cache: InstanceType<typeof api.KVCache>,
  x: Float32Array, B: number, T: number, P: number): Float32Array[] {
  const out = [layer.forward({ data: sliceSeq(x, B, T, spec.dIn, 0, P), dims: [B, P, spec.dIn] }, { cache }).data];
  for (let t = P; t < T; t++) out.push(layer.forward({ data: sliceSeq(x, B, T, spec.dIn, t, t + 1), dims: [B, 1, spec.dIn] }, { cache }).data);
  return out;
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

// Layer output against the F32 cache, scores of std ~1.4 and |y| < 1.5: measured 2.31e-3 (F16) and
// 2.26e-2 (BF16), native (avx512) and JS alike; avx2 and scalar pass the same bounds. The rounding
// of the stored keys moves the softmax weights: about |q| |k| 2^-12 per score for F16, 2^-9 for
// BF16. Bounds ~2x.
const VS_F32: Record<Half, number> = { F16: 5e-3, BF16: 5e-2 };

forEachBackend('half-precision KVCache', () => {
  it('config.dtype: F32 by default; anything but F32, F16 and BF16 is refused by name', () => {
    expect(new api.KVCache({ batch: 1, numKVHeads: 1, headDim: 4, maxSeqLen: 4 }).dtype).toBe('F32');
    expect(() => new api.KVCache({ batch: 1, numKVHeads: 1, headDim: 4, maxSeqLen: 4, dtype: 'F8' as Half })).toThrow(RangeError);
    expect(() => new api.KVCache({ batch: 1, numKVHeads: 1, headDim: 4, maxSeqLen: 4, dtype: 'F8' as Half })).toThrow(/config\.dtype/);
    expect(() => new api.KVCache({ batch: 1, numKVHeads: 1, headDim: 4, maxSeqLen: 4, dtype: 16 as unknown as Half })).toThrow(TypeError);
  });

  for (const dtype of ['F16', 'BF16'] as const) {
    it(`${dtype}: stores every key and value rounded to nearest even, exactly what an F32 cache holds rounded`, () => {
      const B = 2, T = 12, x = randomArray(B * T * spec.dIn, 5);
      const full = setup('F32'), half = setup(dtype);
      expect(half.cache.dtype).toBe(dtype);
      decode(full.layer, full.cache, x, B, T, 7);
      decode(half.layer, half.cache, x, B, T, 7);
      expect(half.cache.length).toBe(T);
      const want = full.cache.snapshot(), got = half.cache.snapshot();
      expect(got.key.dims).toEqual(want.key.dims);
      let changed = 0;
      for (const part of ['key', 'value'] as const) {
        const a = want[part].data, b = got[part].data;
        for (let i = 0; i < a.length; i++) {
          const r = roundHalf(a[i], dtype);
          if (b[i] !== r) throw new Error(`${part}[${i}]: ${b[i]}, want ${r} (${a[i]} rounded to ${dtype})`);
          if (r !== a[i]) changed++;
        }
      }
      expect(changed).toBeGreaterThan(want.key.data.length);  // the rounding is real: most values moved
      half.cache.truncate(3);
      expect(half.cache.snapshot().key.data).toEqual(got.key.data.filter((_, i) => i % (T * spec.headDim) < 3 * spec.headDim));
    });

    it(`${dtype}: decoding reads the stored values exactly (within 2e-6 of float64 attention over them)`, () => {
      const B = 2, T = 10, P = 6, x = randomArray(B * T * spec.dIn, 9);
      const { w, layer, cache } = setup(dtype);
      const steps = decode(layer, cache, x, B, T, P);
      const { key, value } = cache.snapshot();
      const D = spec.headDim, Hq = spec.numHeads, Hkv = spec.numKVHeads;
      const q = matmulRef(x, w.wq.data, B * T, spec.dIn, Hq * D);
      for (let r = 0; r < B * T; r++) for (let j = 0; j < Hq * D; j++) q[r * Hq * D + j] += w.bq![j];
      // Each step's queries against the stored keys up to their position, in float64: the keys before
      // the step as the past, the step's own as the new keys (causal counts from the past's length).
      steps.forEach((y, s) => {
        const from = s === 0 ? 0 : P + s - 1, S = s === 0 ? P : 1;
        const part = (t: Float32Array, lo: number, hi: number) => ({ data: rangeHeads(t, B, Hkv, T, D, lo, hi), dims: [B, Hkv, hi - lo, D] });
        const past = from > 0 ? { pastKey: part(key.data, 0, from), pastValue: part(value.data, 0, from) } : {};
        const ref = attentionRef({ data: sliceSeq(q, B, T, Hq * D, from, from + S), dims: [B, S, Hq * D] },
          part(key.data, from, from + S), part(value.data, from, from + S), { qNumHeads: Hq, kvNumHeads: Hkv, isCausal: true, ...past });
        expectClose(y, ref.y, 2e-6, 0, `step ${s}`);  // 3-D q: ref.y is [B, S, Hq * D] as y is
      });
    });

    it(`${dtype}: the layer output differs from an F32 cache's by the storage rounding alone (<= ${VS_F32[dtype]})`, () => {
      const B = 2, T = 24, x = randomArray(B * T * spec.dIn, 13);
      const full = setup('F32'), half = setup(dtype);
      const a = decode(full.layer, full.cache, x, B, T, 8), b = decode(half.layer, half.cache, x, B, T, 8);
      const err = Math.max(...a.map((y, i) => maxAbs(y, b[i])));
      expect(err).toBeGreaterThan(0);
      expect(err).toBeLessThanOrEqual(VS_F32[dtype]);
    });
  }
});

/** Positions [lo, hi) of each (b, h) of a [B, H, T, D] snapshot, as [B, H, hi - lo, D]. */
function rangeHeads(t: Float32Array, B: number, H: number, T: number, D: number, lo: number, hi: number): Float32Array {
  const n = (hi - lo) * D, out = new Float32Array(B * H * n);
  for (let bh = 0; bh < B * H; bh++) out.set(t.subarray((bh * T + lo) * D, (bh * T + hi) * D), bh * n);
  return out;
}

const FIXTURES = path.join(__dirname, 'fixtures', 'llama');
const NAMES = ['gqa', 'head-dim', 'qwen2-llama3', 'mistral', 'bf16'] as const;
const expected = (name: string): { prompt: number[]; logits: number[]; greedy: number[] } =>
  JSON.parse(readFileSync(path.join(FIXTURES, name, 'expected.json'), 'utf8'));
// Decoded logits (up to ~4.5) against PyTorch's float32 forward, token by token through the cache:
// measured worst over the fixtures 3.69e-3 (F16) and 2.17e-2 (BF16), native and JS alike (an F32
// cache: 3e-6, test/llama.test.ts). Bounds ~2x.
const MODEL_TOL: Record<Half, number> = { F16: 7.5e-3, BF16: 4.5e-2 };

forEachBackend('models: kvDtype', () => {
  it('is F32 by default and is checked by name', () => {
    const cfg = { vocab_size: 30, n_positions: 16, n_embd: 16, n_layer: 1, n_head: 2 };
    expect(api.GPT.random(cfg, 1).kvDtype).toBe('F32');
    expect(api.GPT.random(cfg, 1, { kvDtype: 'BF16' }).kvDtype).toBe('BF16');
    expect(() => api.GPT.random(cfg, 1, { kvDtype: 'F64' as Half })).toThrow(/opts\.kvDtype/);
  });

  for (const dtype of ['F16', 'BF16'] as const) {
    it(`${dtype} caches: the Llama-family fixtures decode PyTorch's greedy tokens, logits within ${MODEL_TOL[dtype]} (past Mistral's window too)`, async () => {
      let worst = 0;
      for (const name of NAMES) {
        const e = expected(name);
        const model = await api.loadModel(path.join(FIXTURES, name), { kvDtype: dtype });
        expect(model.kvDtype).toBe(dtype);
        expect(Array.from(model.generate(e.prompt, { maxNewTokens: 8 })), name).toEqual(e.greedy);
        // One token per step, so every position after the first reads the half-precision cache.
        const decoder = model.decoder(), V = model.config.vocab_size;
        e.prompt.forEach((token, i) => {
          worst = Math.max(worst, maxAbs(decoder.append([token]).data, e.logits.slice(i * V, (i + 1) * V)));
        });
      }
      expect(worst).toBeGreaterThan(0);
      expect(worst).toBeLessThanOrEqual(MODEL_TOL[dtype]);
    });
  }
});
