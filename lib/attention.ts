// attention / attentionAsync: the ONNX Attention operator (opset 23/24). Validates once, builds the
// present key/value when a past is given (so the backend always sees every key in one buffer),
// then runs the active backend (into outputs allocated here, or created by the async job).
import { current } from './backend';
import { withCallSite } from './errors';
import type { AttentionOptions, AttentionResult, Tensor } from './types';
import { validateAttention, type AttentionPlan } from './validate-attention';

interface Inputs {
  plan: AttentionPlan;
  q: Float32Array;
  /** The keys/values the backend reads: the present buffers when a past is given, else k/v. */
  k: Float32Array;
  v: Float32Array;
  present: Pick<AttentionResult, 'presentKey' | 'presentValue'>;
}

function size(dims: readonly number[]): number {
  return dims.reduce((p, d) => p * d, 1);
}

function prepare(q: unknown, k: unknown, v: unknown, opts: AttentionOptions | undefined): Inputs {
  const checked = validateAttention(q, k, v, opts);
  const { plan } = checked;
  if (!checked.pastKey || !checked.pastValue || !plan.presentKeyDims || !plan.presentValueDims) {
    return { plan, q: checked.q, k: checked.k, v: checked.v, present: {} };
  }
  const backend = current();
  const keys = backend.concatPresent(plan, checked.pastKey, checked.k, plan.kNew, plan.D);
  const values = backend.concatPresent(plan, checked.pastValue, checked.v, plan.vNew, plan.Dv);
  return {
    plan, q: checked.q, k: keys, v: values,
    present: { presentKey: { data: keys, dims: [...plan.presentKeyDims] }, presentValue: { data: values, dims: [...plan.presentValueDims] } },
  };
}

function result(plan: AttentionPlan, present: Inputs['present'], y: Float32Array, qkOut: Float32Array | null): AttentionResult {
  const out: AttentionResult = { y: { data: y, dims: [...plan.yDims] }, ...present };
  if (qkOut && plan.qkDims) out.qkMatmulOutput = { data: qkOut, dims: [...plan.qkDims] };
  return out;
}

/**
 * Scaled dot-product attention with the semantics of ONNX `Attention` (opset 23 and 24):
 * softmax(softcap(scale * Q K^T) + mask) V, with grouped-query heads, causal masking, padding
 * (`nonpadKvSeqlen`) and a past key/value cache. A query row that can see no key outputs zeros.
 * @param q 4-D [B, qNumHeads, Sq, D] or 3-D [B, Sq, qNumHeads * D]
 * @param k 4-D [B, kvNumHeads, Skv, D] or 3-D [B, Skv, kvNumHeads * D] (same rank as q)
 * @param v 4-D [B, kvNumHeads, Skv, Dv] or 3-D [B, Skv, kvNumHeads * Dv]
 * @param opts ONNX inputs and attributes in camelCase (attnMask, pastKey, pastValue, nonpadKvSeqlen,
 *   isCausal, scale, softcap, qNumHeads, kvNumHeads, qkMatmulOutputMode); unknown names throw.
 * @returns y, plus presentKey/presentValue when a past was given and qkMatmulOutput when a mode was.
 * @example
 * const { y } = attention(
 *   { data: q, dims: [1, 32, 128, 64] }, { data: k, dims: [1, 8, 128, 64] }, { data: v, dims: [1, 8, 128, 64] },
 *   { isCausal: true });   // GQA: each kv head serves 4 query heads; y.dims is [1, 32, 128, 64]
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts?: AttentionOptions): AttentionResult {
  const { plan, q: qd, k: kd, v: vd, present } = prepare(q, k, v, opts);
  const y = new Float32Array(size(plan.yDims));
  const qkOut = plan.qkDims ? new Float32Array(size(plan.qkDims)) : null;
  current().attention(plan, qd, kd, vd, y, qkOut);
  return result(plan, present, y, qkOut);
}

/**
 * attention() off the JS thread: the native backend runs on the libuv thread pool, so the event
 * loop keeps turning. The job reads copies of the inputs (unless a SharedArrayBuffer backs them),
 * so they may be reused at once, and creates the outputs it resolves with. The JS backend cannot leave the event loop: it computes on
 * this thread and then resolves. Argument errors reject the promise (never throw).
 * @param q see attention()
 * @param k see attention()
 * @param v see attention()
 * @param opts see attention()
 * @example const { y } = await attentionAsync(q, k, v, { isCausal: true });
 */
export async function attentionAsync(q: Tensor, k: Tensor, v: Tensor, opts?: AttentionOptions): Promise<AttentionResult> {
  const { plan, q: qd, k: kd, v: vd, present } = prepare(q, k, v, opts);
  const { y, qkOut } = await withCallSite(() => current().attentionAsync(plan, qd, kd, vd));
  return result(plan, present, y, qkOut);
}
