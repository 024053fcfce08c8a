// The JS backend's attention layer: the same steps as native/core/mha.cc with the JS GEMM and the
// JS attention kernel. No validation here: lib/mha.ts passes checked plans.
//
//   x is (B, S, dIn); q is (B, S, Hq*D), k and v (B, S, Hkv*D); ctx is (B, S, Hq*D); y is (B, S, dOut)
import { planMatmul } from '../validate';
import { layerAttentionPlan, type LayerRope, type MhaCallPlan, type MhaPlan, type MhaWeightArrays } from '../validate-layers';
import { attention } from './attention';
import type { JsKVStore } from './kv-cache';
import { rope } from './llama-ops';
import { matmul } from './matmul';

/** out (rows, n) = x (rows, k) @ w (k, n) + bias */
function project(x: Float32Array, rows: number, k: number, w: Float32Array, bias: Float32Array | null, n: number, out: Float32Array): void {
  matmul(planMatmul([rows, k], [k, n], false, false), x, w, bias, out);
}

/**
 * x (B, S, H*D) rotated at positions past .. past + S - 1, shared by the batch, or with per-row
 * offsets at past + i - offsets[b] clamped at 0 (native/core/mha.cc does the same); a new array.
 */
function rotate(r: LayerRope, x: Float32Array, B: number, S: number, H: number, D: number, past: number,
  offsets: Int32Array | null): Float32Array {
  const positions = new Int32Array(offsets ? B * S : S);
  for (let b = 0; b < (offsets ? B : 1); b++) {
    for (let i = 0; i < S; i++) positions[b * S + i] = Math.max(0, past + i - (offsets ? offsets[b] : 0));
  }
  const out = new Float32Array(x.length);
  rope({ B, S, H, D, rotaryDim: r.rotaryDim, invFreq: r.invFreq, sharedPositions: offsets === null }, x, positions, out);
  return out;
}

export function mhaForward(plan: MhaPlan, w: MhaWeightArrays, call: MhaCallPlan, x: Float32Array,
  store: JsKVStore | null, y: Float32Array): void {
  const { B, S, past } = call;
  const rows = B * S, qWidth = plan.numHeads * plan.headDim, kvWidth = plan.numKVHeads * plan.headDim;
  let q: Float32Array = new Float32Array(rows * qWidth), k: Float32Array = new Float32Array(rows * kvWidth);
  const v = new Float32Array(rows * kvWidth);
  project(x, rows, plan.dIn, w.wq, w.bq, qWidth, q);
  project(x, rows, plan.dIn, w.wk, w.bk, kvWidth, k);
  project(x, rows, plan.dIn, w.wv, w.bv, kvWidth, v);
  // Keys are cached rotated, so a decode step rotates only its own query and key.
  if (plan.rope) {
    q = rotate(plan.rope, q, B, S, plan.numHeads, plan.headDim, past, call.positionOffsets);
    k = rotate(plan.rope, k, B, S, plan.numKVHeads, plan.headDim, past, call.positionOffsets);
  }
  // With a cache the new positions go after its length and attention reads them back from it.
  if (store) store.write(past, k, v, S);
  const ctx = w.wo ? new Float32Array(rows * qWidth) : y;
  const attnPlan = layerAttentionPlan(plan, call, store ? store.maxSeqLen : 0);
  attention(attnPlan, q, store ? store.keys : k, store ? store.values : v, ctx, null, store ? store.dtype : 'F32');
  if (w.wo) project(ctx, rows, qWidth, w.wo, w.bo, plan.dOut, y);
  if (store) store.length = past + S;
}
