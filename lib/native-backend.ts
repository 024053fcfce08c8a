// The native backend: forwards validated plans to the addon. No math and no shape logic here.
import type { Backend } from './backend';
import type { Binding } from './native';

export function createNativeBackend(binding: Binding): Backend {
  return {
    name: 'native',
    dot: (a, b) => binding.dot(a, b),
    matmul: (plan, a, b, bias, out) =>
      binding.matmul(a, b, bias, out, plan.m, plan.k, plan.n, plan.transA, plan.transB, plan.nativeBatch),
  };
}
