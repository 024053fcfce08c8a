// The native backend: forwards validated plans to the addon. No math and no shape logic here.
import type { Backend } from './backend';
import type { Binding } from './native';

/** The raw attention exports: the contract of /work/notes/ATTENTION_BINDING.md (native/binding/attention_binding.cc). */
interface AttentionBinding {
  attention(q: Float32Array, k: Float32Array, v: Float32Array, y: Float32Array, mask: Float32Array | Uint8Array | null,
    kvValid: Int32Array | null, causalOffset: Int32Array | null, qkOut: Float32Array | null, params: Float64Array): void;
  attentionAsync(q: Float32Array, k: Float32Array, v: Float32Array, y: Float32Array, mask: Float32Array | Uint8Array | null,
    kvValid: Int32Array | null, causalOffset: Int32Array | null, qkOut: Float32Array | null, params: Float64Array): Promise<void>;
}

export function createNativeBackend(binding: Binding): Backend {
  const raw = binding as Binding & AttentionBinding;
  return {
    name: 'native',
    dot: (a, b) => binding.dot(a, b),
    matmul: (plan, a, b, bias, out) =>
      binding.matmul(a, b, bias, out, plan.m, plan.k, plan.n, plan.transA, plan.transB, plan.nativeBatch),
    attention: (plan, q, k, v, y, qkOut) =>
      raw.attention(q, k, v, y, plan.mask?.data ?? null, plan.kvValid, plan.causalOffset, qkOut, plan.nativeParams),
    attentionAsync: (plan, q, k, v, y, qkOut) =>
      raw.attentionAsync(q, k, v, y, plan.mask?.data ?? null, plan.kvValid, plan.causalOffset, qkOut, plan.nativeParams),
  };
}
