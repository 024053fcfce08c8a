// Float64 references and tolerant comparison (MLAS style: |a - e| <= atol + rtol * |e|).
import { expect } from 'vitest';

/** Deterministic PRNG (mulberry32) so failures reproduce; seed it from the shape. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform values in [-1, 1). */
export function randomArray(length: number, seed: number): Float32Array {
  const next = rng(seed);
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = next() * 2 - 1;
  return out;
}

/** Float64 c = a @ b for row-major a (m x k), b (k x n). */
export function matmulRef(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const av = a[i * k + p];
      for (let j = 0; j < n; j++) c[i * n + j] += av * b[p * n + j];
    }
  }
  return c;
}

/**
 * Asserts |actual - expected| <= atol + rtol * |expected| elementwise (NaN must match NaN and
 * infinities must match exactly), reporting the first bad index and the largest error.
 */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number, label = ''): void {
  expect(actual.length, `${label} length`).toBe(expected.length);
  let worst = 0, worstIndex = -1, firstBad = -1;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    if (Number.isNaN(e) || !Number.isFinite(e)) {
      if (!Object.is(a, e) && !(Number.isNaN(a) && Number.isNaN(e))) { if (firstBad < 0) firstBad = i; }
      continue;
    }
    const err = Math.abs(a - e);
    if (!(err <= atol + rtol * Math.abs(e)) && firstBad < 0) firstBad = i;
    if (err > worst || Number.isNaN(err)) { worst = err; worstIndex = i; }
  }
  if (firstBad >= 0) {
    expect.fail(`${label} mismatch at index ${firstBad}: expected ${expected[firstBad]}, got ${actual[firstBad]} ` +
      `(max abs error ${worst} at ${worstIndex}; atol ${atol}, rtol ${rtol})`);
  }
}
