// dot(a, b) on both backends against a float64 reference: lengths around the SIMD width and
// unroll factors, subarray inputs, non-finite values, and argument errors.
import { expect, it } from 'vitest';
import { api, forEachBackend } from './helpers/backends';
import { randomArray } from './helpers/oracle';

function reference(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

forEachBackend('dot', () => {
  it('computes the seeds example [1,2,3]·[4,5,6] = 32', () => {
    expect(api.dot(new Float32Array([1, 2, 3]), new Float32Array([4, 5, 6]))).toBe(32);
  });

  it('is 0 for empty vectors', () => {
    expect(api.dot(new Float32Array(0), new Float32Array(0))).toBe(0);
  });

  // The bound scales with sum |a_i b_i| (S): float32 accumulation errs by at most about n u S
  // (u = 2^-24) in the worst case, and measured on these seeded inputs (30 seeds per length,
  // lengths 1..70 and up to 65537) by at most 2.2 u S on avx512/avx2 and 1.5 u S on scalar (JS sums
  // in float64: 1e-13 absolute). Bound: 8 u S (~4x the worst), which also rejects a lost term.
  const U = 2 ** -24, FACTOR = 8;
  const LENGTHS = [...Array.from({ length: 70 }, (_, i) => i + 1), 127, 128, 129, 1000, 4097, 65537];
  const bound = (a: Float32Array, b: Float32Array) => {
    let S = 0;
    for (let i = 0; i < a.length; i++) S += Math.abs(a[i] * b[i]);
    return FACTOR * U * S;
  };

  it('matches the float64 reference within 8 u sum|a_i b_i| for lengths 1..70 and a few large ones', () => {
    for (const n of LENGTHS) {
      const a = randomArray(n, n), b = randomArray(n, n + 1);
      expect(Math.abs(api.dot(a, b) - reference(a, b)), `n = ${n}`).toBeLessThanOrEqual(bound(a, b));
    }
  });

  it('the bound rejects a dot that loses its last term (a tail-loop bug)', () => {
    for (const n of LENGTHS) {
      const a = randomArray(n, n), b = randomArray(n, n + 1);
      const lost = reference(a.subarray(0, n - 1), b.subarray(0, n - 1));
      expect(Math.abs(lost - reference(a, b)), `n = ${n}`).toBeGreaterThan(bound(a, b));
    }
  });

  it('reads subarrays with a non-zero byteOffset and leaves inputs alone', () => {
    const backing = randomArray(200, 3);
    const a = backing.subarray(1, 68), b = backing.subarray(100, 167);
    const copy = backing.slice();
    expect(api.dot(a, b)).toBeCloseTo(reference(a, b), 5);
    expect(backing).toEqual(copy);
  });

  it('propagates NaN and infinities', () => {
    const a = randomArray(33, 1), b = randomArray(33, 2);
    a[31] = Number.NaN;
    expect(api.dot(a, b)).toBeNaN();
    a[31] = Number.POSITIVE_INFINITY;
    b[31] = 1;
    expect(api.dot(a, b)).toBe(Number.POSITIVE_INFINITY);
    b[0] = Number.NEGATIVE_INFINITY;
    a[0] = 1;
    expect(api.dot(a, b)).toBeNaN();
  });

  it('rejects wrong kinds with a TypeError and unequal lengths with a RangeError', () => {
    expect(() => api.dot([1, 2] as never, new Float32Array(2))).toThrow(TypeError);
    expect(() => api.dot(new Float32Array(2), new Float64Array(2) as never)).toThrow(/^Expected Float32Array for b but received Float64Array of length 2$/);
    expect(() => api.dot(new Float32Array(3), new Float32Array(4))).toThrow(RangeError);
    expect(() => api.dot(new Float32Array(3), new Float32Array(4))).toThrow(/^Expected a Float32Array of length 3 \(the length of a\) for b but received length 4$/);
  });
});
