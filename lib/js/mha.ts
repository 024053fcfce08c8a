// The JS backend's attention layer: the same steps as native/core/mha.cc with the JS GEMM and the
// JS attention kernel. No validation here: lib/mha.ts passes checked plans.
//
//   x is (B, S, dIn); q is (B, S, Hq*D), k and v (B, S, Hkv*D); ctx is (B, S, Hq*D); y is (B, S, dOut)
import { layerAttentionPlan, type MhaCallPlan, type MhaPlan, type MhaWeightArrays } from '../validate-layers';
import { attention } from './attention';
import type { JsKVStore } from './kv-cache';
import { gemm } from './matmul';

export function mhaForward(plan: MhaPlan, w: MhaWeightArrays, call: MhaCallPlan, x: Float32Array,
  store: JsKVStore | null, y: Float32Array): void {
  const { B, S, past } = call;
  const rows = B * S, qWidth = plan.numHeads * plan.headDim, kvWidth = plan.numKVHeads * plan.headDim;
  const q = new Float32Array(rows * qWidth), k = new Float32Array(rows * kvWidth), v = new Float32Array(rows * kvWidth);
  gemm(x, 0, w.wq, 0, q, 0, rows, plan.dIn, qWidth, w.bq);
  gemm(x, 0, w.wk, 0, k, 0, rows, plan.dIn, kvWidth, w.bk);
  gemm(x, 0, w.wv, 0, v, 0, rows, plan.dIn, kvWidth, w.bv);
  // With a cache the new positions go after its length and attention reads them back from it.
  if (store) store.write(past, k, v, S);
  const ctx = w.wo ? new Float32Array(rows * qWidth) : y;
  const attnPlan = layerAttentionPlan(plan, call, store ? store.maxSeqLen : 0);
  attention(attnPlan, q, store ? store.keys : k, store ? store.values : v, ctx, null);
  if (w.wo) gemm(ctx, 0, w.wo, 0, y, 0, rows, qWidth, plan.dOut, w.bo);
  if (store) store.length = past + S;
}
