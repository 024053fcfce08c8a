// The native backend: forwards validated plans to the addon, encoding parameter structs through
// ./wire.ts. No math and no shape logic here.
import type { Backend, KVStore } from '../backend';
import type { Binding, NativeKVCache } from './binding';
import { createNativeDecoder } from './decoder';
import { createWire, DTYPE_CODES } from './wire';

export function createNativeBackend(binding: Binding): Backend {
  const wire = createWire(binding.wire);
  // The facade only hands a native layer a cache made by this backend (validateMhaForward).
  const nativeCache = (cache: KVStore | null) => cache as NativeKVCache | null;
  return {
    name: 'native',
    dot: (a, b) => binding.dot(a, b),
    matmul: (plan, a, b, bias, out) =>
      binding.matmul(a, b, bias, out, plan.m, plan.k, plan.n, plan.transA, plan.transB, wire.matmulBatch(plan)),
    attention: (plan, q, k, v, y, qkOut) =>
      binding.attention(q, k, v, y, plan.mask?.data ?? null, plan.kvValid, plan.causalOffset, qkOut, wire.attention(plan)),
    attentionAsync: (plan, q, k, v) =>
      binding.attentionAsync(q, k, v, plan.mask?.data ?? null, plan.kvValid, plan.causalOffset, wire.attention(plan)),
    concatPresent: (plan, past, x, xView, d) => binding.concatPresent(past, x, wire.present(plan, xView, d)),
    createKVCache: (c) => new binding.KVCache(c.batch, c.numKVHeads, c.headDim, c.maxSeqLen, DTYPE_CODES[c.dtype]),
    createMha(plan, w) {
      const layer = new binding.MultiHeadAttention(wire.mha(plan), w.wq, w.wk, w.wv, w.wo, w.bq, w.bk, w.bv, w.bo,
        plan.rope?.invFreq ?? null);
      return {
        forward: (call, x, cache, y) =>
          layer.forward(x, call.B, call.S, nativeCache(cache), call.mask?.data ?? null, wire.mask(call.mask), y, call.positionOffsets),
        forwardAsync: (call, x, cache) =>
          layer.forwardAsync(x, call.B, call.S, nativeCache(cache), call.mask?.data ?? null, wire.mask(call.mask), call.positionOffsets),
      };
    },
    createDecoder: (spec) => createNativeDecoder(binding, wire, spec),
    rmsNorm: (x, rows, width, weight, eps, out) => binding.rmsNorm(x, weight, out, rows, width, eps),
    rope: (plan, x, positions, out) =>
      binding.rope(x, positions, plan.invFreq, out, plan.B, plan.S, plan.H, plan.D, plan.rotaryDim),
    silu: (x, out) => binding.silu(x, out),
    swiglu: (gate, up, out) => binding.swiglu(gate, up, out),
  };
}
