// The pure-JS backend: every op, float32 storage, readable kernels.
import type { Backend } from '../backend';
import { attention, concatPresent } from './attention';
import { createDecoder } from './decoder';
import { JsKVStore } from './kv-cache';
import { dot, matmul } from './matmul';
import { mhaForward } from './mha';
import { rmsNorm, rope, silu, swiglu } from './llama-ops';

const outputSize = (dims: readonly number[]) => dims.reduce((p, d) => p * d, 1);

export const jsBackend: Backend = {
  name: 'js',
  dot,
  matmul,
  attention,
  // The JS backend cannot leave the event loop: it computes here, then resolves.
  async attentionAsync(plan, q, k, v) {
    const y = new Float32Array(outputSize(plan.yDims));
    const qkOut = plan.qkDims ? new Float32Array(outputSize(plan.qkDims)) : null;
    attention(plan, q, k, v, y, qkOut);
    return { y, qkOut };
  },
  concatPresent,
  createKVCache: (c) => new JsKVStore(c.batch, c.numKVHeads, c.headDim, c.maxSeqLen, c.dtype),
  createMha(plan, weights) {
    // The facade only hands a JS layer a cache made by this backend (validateMhaForward).
    const store = (cache: unknown) => cache as JsKVStore | null;
    return {
      forward: (call, x, cache, y) => mhaForward(plan, weights, call, x, store(cache), y),
      async forwardAsync(call, x, cache) {
        const y = new Float32Array(outputSize(call.outDims));
        mhaForward(plan, weights, call, x, store(cache), y);
        return y;
      },
    };
  },
  createDecoder,
  rmsNorm,
  rope,
  silu,
  swiglu,
};
