// The pure-JS backend: every op, float32 storage, readable kernels.
import type { Backend } from '../backend';
import { attention } from './attention';
import { JsKVStore } from './kv-cache';
import { dot, matmul } from './matmul';
import { mhaForward } from './mha';
import { addInPlace, embed, geluTanh, layerNorm } from './ops';

export const jsBackend: Backend = {
  name: 'js',
  dot,
  matmul,
  attention,
  // The JS backend cannot leave the event loop: it computes here, then resolves.
  attentionAsync: async (plan, q, k, v, y, qkOut) => attention(plan, q, k, v, y, qkOut),
  createKVCache: (c) => new JsKVStore(c.batch, c.numKVHeads, c.headDim, c.maxSeqLen),
  createMha(plan, weights) {
    // The facade only hands a JS layer a cache made by this backend (validateMhaForward).
    const store = (cache: unknown) => cache as JsKVStore | null;
    return {
      forward: (call, x, cache, y) => mhaForward(plan, weights, call, x, store(cache), y),
      forwardAsync: async (call, x, cache, y) => mhaForward(plan, weights, call, x, store(cache), y),
    };
  },
  embed,
  layerNorm,
  geluTanh,
  addInPlace,
};
