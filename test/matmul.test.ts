import { expect, it } from 'vitest';
import { api, forEachBackend } from './helpers/backends';
import { expectClose, matmulRef, randomArray } from './helpers/oracle';

// Tolerance: float32 accumulation over k terms of values in [-1, 1): error grows ~ sqrt(k) * eps.
const ATOL = 1e-5, RTOL = 1e-4;

forEachBackend('dot', () => {
  it('computes the seeds example [1,2,3]·[4,5,6] = 32', () => {
    expect(api.dot(new Float32Array([1, 2, 3]), new Float32Array([4, 5, 6]))).toBe(32);
  });
});

forEachBackend('matmul', () => {
  it('multiplies the seeds example [150,4] @ [4,6]', () => {
    const a = randomArray(150 * 4, 1), b = randomArray(4 * 6, 2);
    const c = api.matmul({ data: a, dims: [150, 4] }, { data: b, dims: [4, 6] });
    expect(c.dims).toEqual([150, 6]);
    expectClose(c.data, matmulRef(a, b, 150, 4, 6), ATOL, RTOL);
  });
});
