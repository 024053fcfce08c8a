// The pure-JS backend: every op, float32 storage, readable kernels.
import type { Backend } from '../backend';
import { dot, matmul } from './matmul';

export const jsBackend: Backend = {
  name: 'js',
  dot,
  matmul,
};
