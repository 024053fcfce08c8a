// The pure-JS backend: every op, float32 storage, readable kernels.
import type { Backend } from '../backend';
import { attention } from './attention';
import { dot, matmul } from './matmul';

export const jsBackend: Backend = {
  name: 'js',
  dot,
  matmul,
  attention,
  // The JS backend cannot leave the event loop: it computes here, then resolves.
  attentionAsync: async (plan, q, k, v, y, qkOut) => attention(plan, q, k, v, y, qkOut),
};
