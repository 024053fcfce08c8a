// Float64 references and tolerant comparison (MLAS style: |a - e| <= atol + rtol * |e|).
//
// Every tolerance in the suite is set from measured error: run a file with
// NODE_ATTENTION_ERROR_LOG=/some/file.jsonl and each expectClose appends one line with the test,
// the label, the bounds and the worst errors it saw (absolute where |expected| < 1, relative
// where |expected| >= 1, and the share of the bound used). The bounds then sit a stated few
// times above the worst value logged, so a real error (scale off by 10%, another GELU) fails.
import { appendFileSync } from 'node:fs';
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
 * The first index where |actual - expected| > atol + rtol * |expected| (NaN must match NaN and
 * infinities must match exactly), or -1: the check of expectClose, for tests that prove a
 * deliberately wrong result is rejected.
 */
export function firstMismatch(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number): number {
  if (actual.length !== expected.length) return 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    if (Number.isNaN(e) || !Number.isFinite(e)) {
      if (!Object.is(a, e) && !(Number.isNaN(a) && Number.isNaN(e))) return i;
      continue;
    }
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) return i;
  }
  return -1;
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
  const log = process.env.NODE_ATTENTION_ERROR_LOG;
  if (log) {
    let absSmall = 0, relBig = 0, used = 0;
    for (let i = 0; i < expected.length; i++) {
      const e = expected[i], err = Math.abs(actual[i] - e);
      if (!Number.isFinite(e) || !Number.isFinite(err)) continue;
      if (Math.abs(e) < 1) absSmall = Math.max(absSmall, err);
      else relBig = Math.max(relBig, err / Math.abs(e));
      used = Math.max(used, err / (atol + rtol * Math.abs(e)));
    }
    appendFileSync(log, JSON.stringify({ test: expect.getState().currentTestName, label, atol, rtol, absSmall, relBig, used }) + '\n');
  }
  if (firstBad >= 0) {
    expect.fail(`${label} mismatch at index ${firstBad}: expected ${expected[firstBad]}, got ${actual[firstBad]} ` +
      `(max abs error ${worst} at ${worstIndex}; atol ${atol}, rtol ${rtol})`);
  }
}
