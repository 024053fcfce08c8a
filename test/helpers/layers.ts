// Float64 reference for an attention layer (projections, GQA attention, output projection) and
// random layer weights, shared by test/mha.test.ts and test/kv-cache.test.ts.
import { matmulRef, randomArray } from './oracle';

export interface LayerSpec {
  dIn: number;
  numHeads: number;
  numKVHeads: number;
  headDim: number;
  /** 0: no output projection. */
  dOut: number;
  biases: boolean;
}

export interface LayerWeights {
  wq: { data: Float32Array; dims: number[] };
  wk: { data: Float32Array; dims: number[] };
  wv: { data: Float32Array; dims: number[] };
  wo?: { data: Float32Array; dims: number[] };
  bq?: Float32Array;
  bk?: Float32Array;
  bv?: Float32Array;
  bo?: Float32Array;
}

/** Random weights for `spec`, seeded from its sizes. Values in [-0.5, 0.5) keep scores moderate. */
export function randomWeights(spec: LayerSpec, seed = 0): LayerWeights {
  const { dIn, numHeads: Hq, numKVHeads: Hkv, headDim: D, dOut } = spec;
  let s = seed * 1000 + dIn * 31 + Hq * 7 + Hkv * 3 + D + dOut * 11;
  const mat = (rows: number, cols: number) => ({ data: randomArray(rows * cols, ++s).map((v) => v / 2), dims: [rows, cols] });
  const vec = (n: number) => randomArray(n, ++s).map((v) => v / 2);
  const w: LayerWeights = { wq: mat(dIn, Hq * D), wk: mat(dIn, Hkv * D), wv: mat(dIn, Hkv * D) };
  if (dOut) w.wo = mat(Hq * D, dOut);
  if (spec.biases) {
    w.bq = vec(Hq * D);
    w.bk = vec(Hkv * D);
    w.bv = vec(Hkv * D);
    if (dOut) w.bo = vec(dOut);
  }
  return w;
}

function project(x: ArrayLike<number>, rows: number, k: number, w: { data: Float32Array; dims: number[] }, b?: Float32Array): Float64Array {
  const n = w.dims[1];
  const out = matmulRef(x, w.data, rows, k, n);
  if (b) for (let r = 0; r < rows; r++) for (let j = 0; j < n; j++) out[r * n + j] += b[j];
  return out;
}

/**
 * y (B, T, dOut) of the layer on x (B, T, dIn) in float64. `mask(b, h, i, j)` returns an additive
 * bias (-Infinity blocks). Causal: query i sees key j <= i.
 */
export function layerRef(spec: LayerSpec, w: LayerWeights, x: ArrayLike<number>, B: number, T: number,
  opts: { causal?: boolean; scale?: number; mask?: (b: number, h: number, i: number, j: number) => number } = {}): Float64Array {
  const { dIn, numHeads: Hq, numKVHeads: Hkv, headDim: D } = spec;
  const causal = opts.causal ?? true, scale = opts.scale ?? 1 / Math.sqrt(D);
  const rows = B * T, qw = Hq * D, kw = Hkv * D;
  const q = project(x, rows, dIn, w.wq, w.bq), k = project(x, rows, dIn, w.wk, w.bk), v = project(x, rows, dIn, w.wv, w.bv);
  const ctx = new Float64Array(rows * qw);
  const group = Hq / Hkv;
  const scores = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const hk = Math.floor(h / group);
      for (let i = 0; i < T; i++) {
        let max = -Infinity;
        for (let j = 0; j < T; j++) {
          let s = -Infinity;
          if (!causal || j <= i) {
            s = 0;
            for (let d = 0; d < D; d++) s += q[(b * T + i) * qw + h * D + d] * k[(b * T + j) * kw + hk * D + d];
            s = s * scale + (opts.mask ? opts.mask(b, h, i, j) : 0);
          }
          scores[j] = s;
          if (s > max) max = s;
        }
        if (max === -Infinity) continue;
        let sum = 0;
        for (let j = 0; j < T; j++) sum += (scores[j] = Math.exp(scores[j] - max));
        for (let j = 0; j < T; j++) {
          const p = scores[j] / sum;
          for (let d = 0; d < D; d++) ctx[(b * T + i) * qw + h * D + d] += p * v[(b * T + j) * kw + hk * D + d];
        }
      }
    }
  }
  return w.wo ? project(ctx, rows, qw, w.wo, w.bo) : ctx;
}

/** Rows [from, to) of every batch entry of a (B, T, width) array, as (B, to - from, width). */
export function sliceSeq(data: ArrayLike<number>, B: number, T: number, width: number, from: number, to: number): Float32Array {
  const out = new Float32Array(B * (to - from) * width);
  for (let b = 0; b < B; b++) {
    for (let t = from; t < to; t++) {
      for (let c = 0; c < width; c++) out[(b * (to - from) + t - from) * width + c] = data[(b * T + t) * width + c];
    }
  }
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return a.length === b.length ? worst : Infinity;
}
