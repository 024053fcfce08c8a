// matmul on both backends against a float64 reference: size sweeps around the SIMD width and the
// tile sizes (native 6x16 / 4x8 tiles, KC = 256 and MC = 144 blocks; JS 4x4 tiles), transposes,
// bias, out, numpy broadcasting and 1-D promotion, subarray inputs, non-finite values, thread
// counts and the scalar kernel set, random shapes (fast-check), and shape errors.
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { api, forEachBackend, nativeAvailable } from './helpers/backends';
import { expectClose, matmulRef, randomArray } from './helpers/oracle';

interface Tensor { data: Float32Array; dims: number[] }
interface Opts { transA?: boolean; transB?: boolean; bias?: Float32Array }

// float32 products summed over k: rounding grows with k (about eps * sqrt(k) * |sum| typically,
// k * eps worst case); values are in [-1, 1), so |sum| <= k.
const tolerance = (k: number) => ({ atol: 4e-7 * (k + 4), rtol: 2e-5 });

const tensor = (dims: number[], seed: number): Tensor => ({ data: randomArray(dims.reduce((p, d) => p * d, 1), seed), dims });

/** Float64 numpy.matmul (with per-operand swap of the last two dims), written independently of lib/validate.ts. */
function reference(a: Tensor, b: Tensor, opts: Opts = {}): { data: Float64Array; dims: number[] } {
  const aVec = a.dims.length === 1, bVec = b.dims.length === 1;
  const aMat = aVec ? [1, a.dims[0]] : a.dims.slice(-2);
  const bMat = bVec ? [b.dims[0], 1] : b.dims.slice(-2);
  const tA = !!opts.transA && !aVec, tB = !!opts.transB && !bVec;
  const [m, k] = tA ? [aMat[1], aMat[0]] : aMat;
  const [kb, n] = tB ? [bMat[1], bMat[0]] : bMat;
  if (k !== kb) throw new Error('reference: k mismatch');
  const aBatch = aVec ? [] : a.dims.slice(0, -2), bBatch = bVec ? [] : b.dims.slice(0, -2);
  const rank = Math.max(aBatch.length, bBatch.length);
  const pad = (d: number[]) => [...new Array(rank - d.length).fill(1), ...d];
  const pa = pad(aBatch), pb = pad(bBatch);
  const batchDims = pa.map((d, i) => Math.max(d, pb[i]));
  const batch = batchDims.reduce((p, d) => p * d, 1);
  const out = new Float64Array(batch * m * n);
  for (let bi = 0; bi < batch; bi++) {
    let rem = bi, aIndex = 0, bIndex = 0, aScale = 1, bScale = 1;
    for (let d = rank - 1; d >= 0; d--) {
      const idx = rem % batchDims[d];
      rem = Math.floor(rem / batchDims[d]);
      aIndex += (pa[d] === 1 ? 0 : idx) * aScale;
      bIndex += (pb[d] === 1 ? 0 : idx) * bScale;
      aScale *= pa[d];
      bScale *= pb[d];
    }
    const aOff = aIndex * m * k, bOff = bIndex * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = opts.bias ? opts.bias[j] : 0;
        for (let p = 0; p < k; p++) {
          s += a.data[aOff + (tA ? p * m + i : i * k + p)] * b.data[bOff + (tB ? j * k + p : p * n + j)];
        }
        out[(bi * m + i) * n + j] = s;
      }
    }
  }
  return { data: out, dims: [...batchDims, ...(aVec ? [] : [m]), ...(bVec ? [] : [n])] };
}

function check(a: Tensor, b: Tensor, opts: Opts = {}, label = ''): void {
  const expected = reference(a, b, opts);
  const got = api.matmul(a, b, opts);
  expect(got.dims, label).toEqual(expected.dims);
  const k = a.dims.length === 1 ? a.dims[0] : a.dims[a.dims.length - (opts.transA ? 2 : 1)];
  const { atol, rtol } = tolerance(k);
  expectClose(got.data, expected.data, atol, rtol, `${label} a ${JSON.stringify(a.dims)} b ${JSON.stringify(b.dims)} ${JSON.stringify({ ...opts, bias: !!opts.bias })}`);
}

/** a (m x k) @ b (k x n), stored transposed where asked. */
function checkShape(m: number, k: number, n: number, opts: Opts = {}): void {
  const seed = m * 1_000_003 + k * 1009 + n;
  check(tensor(opts.transA ? [k, m] : [m, k], seed), tensor(opts.transB ? [n, k] : [k, n], seed + 1), opts, `${m}x${k}x${n}`);
}

// Around the AVX2 vector (8) and tile (6 x 16), the scalar tile (4 x 8) and the JS tile (4 x 4).
const EDGES = [1, 2, 5, 6, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 129, 130];

forEachBackend('matmul', () => {
  it('multiplies the seeds example [150,4] @ [4,6]', () => {
    const a = randomArray(150 * 4, 1), b = randomArray(4 * 6, 2);
    const c = api.matmul({ data: a, dims: [150, 4] }, { data: b, dims: [4, 6] });
    expect(c.dims).toEqual([150, 6]);
    expectClose(c.data, matmulRef(a, b, 150, 4, 6), 1e-6, 1e-6);
  });

  it('gives exact results on small integers', () => {
    const a = { data: Float32Array.of(1, 2, 3, 4, 5, 6), dims: [2, 3] };
    const b = { data: Float32Array.of(7, 8, 9, 10, 11, 12), dims: [3, 2] };
    expect(Array.from(api.matmul(a, b).data)).toEqual([58, 64, 139, 154]);
    expect(Array.from(api.matmul(a, b, { bias: Float32Array.of(1, -1) }).data)).toEqual([59, 63, 140, 153]);
  });

  it('sweeps m across the tile edges', () => {
    for (const m of EDGES) for (const [k, n] of [[5, 7], [64, 16], [17, 33]]) checkShape(m, k, n);
  });

  it('sweeps n across the vector and tile edges', () => {
    for (const n of EDGES) for (const [m, k] of [[1, 17], [6, 3], [13, 64]]) checkShape(m, k, n);
  });

  it('sweeps k, across the 256-deep k blocks too', () => {
    for (const k of [...EDGES, 255, 256, 257, 300, 513]) checkShape(7, k, 17);
    checkShape(13, 520, 40, { transA: true, transB: true });
    checkShape(20, 300, 1100, { bias: randomArray(1100, 1) });
  });

  it('handles 1-row and 1-column products and larger odd shapes (threaded natively, A packed when wide)', () => {
    for (const [m, k, n] of [[1, 300, 129], [129, 300, 1], [1, 1, 1], [1, 130, 1], [130, 1, 130], [131, 67, 97], [150, 145, 35], [290, 33, 70], [20, 30, 1100]]) {
      checkShape(m, k, n);
    }
  });

  it('reads transposed operands (transA, transB, both) at edge sizes', () => {
    for (const [m, k, n] of [[1, 1, 1], [5, 7, 17], [6, 16, 16], [7, 33, 15], [33, 65, 31], [2, 300, 70], [130, 129, 127]]) {
      for (const [transA, transB] of [[true, false], [false, true], [true, true]]) checkShape(m, k, n, { transA, transB });
    }
  });

  it('adds bias along the last output dim, fused or not, across k blocks', () => {
    for (const [m, k, n] of [[1, 1, 1], [7, 3, 6], [6, 300, 16], [20, 17, 33], [67, 64, 129]]) {
      checkShape(m, k, n, { bias: randomArray(n, n + 7) });
      checkShape(m, k, n, { bias: randomArray(n, n + 8), transA: true, transB: true });
    }
    const bias = { data: randomArray(5, 3), dims: [5] };
    const got = api.matmul(tensor([3, 4], 1), tensor([4, 5], 2), { bias });
    expectClose(got.data, reference(tensor([3, 4], 1), tensor([4, 5], 2), { bias: bias.data }).data, 1e-6, 1e-6);
  });

  it('writes into opts.out and returns it as the result data', () => {
    const a = tensor([9, 20], 4), b = tensor([20, 18], 5);
    const out = new Float32Array(9 * 18).fill(Number.NaN);
    const c = api.matmul(a, b, { out });
    expect(c.data).toBe(out);
    expectClose(out, reference(a, b).data, 1e-5, 1e-5);
    const backing = new Float32Array(200).fill(-1);
    const view = backing.subarray(10, 10 + 9 * 18);
    expect(api.matmul(a, b, { out: view, bias: randomArray(18, 6) }).data).toBe(view);
    expect(backing[9]).toBe(-1);
    expect(backing[10 + 9 * 18]).toBe(-1);
  });

  it('broadcasts batch dims like numpy', () => {
    check(tensor([2, 1, 3, 4], 1), tensor([5, 4, 6], 2));
    check(tensor([3, 4], 3), tensor([2, 4, 5], 4));
    check(tensor([2, 3, 4], 5), tensor([4, 5], 6));
    check(tensor([1, 3, 7, 20], 7), tensor([2, 1, 20, 17], 8), { bias: randomArray(17, 9) });
    check(tensor([4, 2, 20, 7], 10), tensor([2, 17, 20], 11), { transA: true, transB: true });
    check(tensor([3, 1, 1, 2, 2], 12), tensor([1, 2, 1, 2, 2], 13));
    check(tensor([8, 64, 32], 14), tensor([8, 32, 64], 15));
  });

  it('promotes and squeezes 1-D operands', () => {
    const v = tensor([4], 1), w = tensor([4], 2);
    const scalar = api.matmul(v, w);
    expect(scalar.dims).toEqual([]);
    expect(scalar.data.length).toBe(1);
    check(v, w);
    check(tensor([4], 3), tensor([4, 6], 4));
    check(tensor([3, 4], 5), tensor([4], 6));
    check(tensor([4], 7), tensor([2, 4, 6], 8));
    check(tensor([2, 3, 4], 9), tensor([4], 10));
    check(tensor([4], 11), tensor([6, 4], 12), { transA: true, transB: true });
    check(tensor([4], 13), tensor([4], 14), { bias: Float32Array.of(0.5) });
    expect(api.matmul(new Float32Array([1, 2, 3]), new Float32Array([4, 5, 6])).data[0]).toBe(32);
  });

  it('reads subarray inputs with a non-zero byteOffset', () => {
    const backing = randomArray(1000, 21);
    const a = { data: backing.subarray(3, 3 + 23 * 19), dims: [23, 19] };
    const b = { data: backing.subarray(501, 501 + 19 * 21), dims: [19, 21] };
    expect(a.data.byteOffset).toBe(12);
    check(a, b);
    check(a, { data: b.data, dims: [21, 19] }, { transB: true });
    check(a, b, { bias: backing.subarray(900, 921) });
  });

  it('never mutates its inputs', () => {
    const a = tensor([2, 17, 33], 1), b = tensor([33, 40], 2), bias = randomArray(40, 3);
    const copies = [a.data.slice(), b.data.slice(), bias.slice()];
    const dims = [a.dims.slice(), b.dims.slice()];
    api.matmul(a, b, { bias });
    api.matmul(a, { data: b.data, dims: [40, 33] }, { transB: true });
    expect([a.data, b.data, bias]).toEqual(copies);
    expect([a.dims, b.dims]).toEqual(dims);
  });

  it('propagates NaN and infinities only where the math puts them', () => {
    for (const [m, k, n] of [[7, 5, 17], [13, 300, 21]]) {
      const a = tensor([m, k], m), b = tensor([k, n], n);
      a.data[(m - 1) * k + 2] = Number.NaN;
      b.data[1 * n + (n - 1)] = Number.POSITIVE_INFINITY;
      b.data[3 * n] = Number.NEGATIVE_INFINITY;
      const got = api.matmul(a, b);
      const want = reference(a, b);
      expectClose(got.data, want.data, 1e-4, 1e-4, `${m}x${k}x${n}`);
      expect(Number.isFinite(got.data[n + 1])).toBe(true);
    }
  });
});

describe.skipIf(!nativeAvailable)('matmul, native kernel sets and threads', () => {
  const isa = nativeAvailable ? api.backendInfo().simdSupported[0] : '';
  const threads = nativeAvailable ? api.getNumThreads() : 1;
  afterEach(() => {
    api.setSimd(isa);
    api.setNumThreads(threads);
    api.useBackend('native');
  });

  it('matches the reference with the scalar kernels', () => {
    api.useBackend('native');
    expect(api.setSimd('scalar')).toBe(true);
    expect(api.backendInfo().simd).toBe('scalar');
    for (const [m, k, n] of [[1, 1, 1], [5, 9, 7], [4, 8, 8], [9, 260, 17], [67, 33, 70]]) {
      checkShape(m, k, n);
      checkShape(m, k, n, { transA: true, transB: true, bias: randomArray(n, 2) });
    }
    check(tensor([2, 1, 3, 4], 1), tensor([5, 4, 6], 2));
  });

  it('gives the same bits on 1 thread and on many', () => {
    api.useBackend('native');
    for (const [m, k, n] of [[200, 300, 90], [64, 64, 64], [3, 500, 700]]) {
      const a = tensor([m, k], 1), b = tensor([k, n], 2), bias = randomArray(n, 3);
      api.setNumThreads(1);
      const one = api.matmul(a, b, { bias }).data;
      api.setNumThreads(Math.max(2, threads));
      expect(api.matmul(a, b, { bias }).data).toEqual(one);
    }
  });
});

forEachBackend('matmul properties', () => {
  const dim = fc.integer({ min: 1, max: 40 });
  const shape = fc.record({
    m: dim, k: dim, n: dim,
    aVec: fc.boolean(), bVec: fc.boolean(), transA: fc.boolean(), transB: fc.boolean(), bias: fc.boolean(),
    aBatch: fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 2 }),
    bBatch: fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 2 }),
    seed: fc.nat(),
  });

  it('equals the float64 reference on random valid shapes', () => {
    fc.assert(fc.property(shape, (s) => {
      // Make the batch dims broadcastable: where both have a dim, keep a's or set b's to 1.
      const bBatch = s.bBatch.map((d, i) => {
        const ai = s.aBatch.length - s.bBatch.length + i;
        return ai < 0 || s.aBatch[ai] === d || s.aBatch[ai] === 1 ? d : 1;
      });
      const aDims = s.aVec ? [s.k] : [...s.aBatch, ...(s.transA ? [s.k, s.m] : [s.m, s.k])];
      const bDims = s.bVec ? [s.k] : [...bBatch, ...(s.transB ? [s.n, s.k] : [s.k, s.n])];
      const n = s.bVec ? 1 : s.n;
      check(tensor(aDims, s.seed), tensor(bDims, s.seed + 1), { transA: s.transA, transB: s.transB, bias: s.bias ? randomArray(n, s.seed + 2) : undefined });
    }), { numRuns: 60, seed: 42 });
  });
});

forEachBackend('matmul shape errors', () => {
  const cases: [string, () => unknown, string, RegExp][] = [
    ['k differs', () => api.matmul(tensor([2, 3], 1), tensor([4, 2], 2)), 'RangeError',
      /^Expected dims \[\.\.\., 3, n\] \(k = 3 from the last dim of a with dims \[2, 3\]\) for b but received dims \[4, 2\]$/],
    ['k differs with transA', () => api.matmul(tensor([3, 2], 1), tensor([4, 2], 2), { transA: true }), 'RangeError',
      /\(k = 3 from the second-to-last dim \(transA\) of a with dims \[3, 2\]\) for b/],
    ['k differs with transB', () => api.matmul(tensor([2, 3], 1), tensor([2, 4], 2), { transB: true }), 'RangeError',
      /^Expected dims \[\.\.\., n, 3\] .* for b but received dims \[2, 4\] with transB$/],
    ['1-D lengths differ', () => api.matmul(tensor([3], 1), tensor([4], 2)), 'RangeError', /^Expected dims \[3\] \(k = 3 from the length of a/],
    ['batch dims clash', () => api.matmul(tensor([2, 2, 3], 1), tensor([3, 3, 2], 2)), 'RangeError',
      /batch dims that broadcast with \[2\] \(the batch dims of a with dims \[2, 2, 3\]\) for b but received dims \[3, 3, 2\]/],
    ['bias of the wrong length', () => api.matmul(tensor([2, 3], 1), tensor([3, 4], 2), { bias: new Float32Array(3) }), 'RangeError',
      /^Expected dims \[4\] \(the last output dim\) for opts\.bias but received dims \[3\]$/],
    ['out of the wrong length', () => api.matmul(tensor([2, 3], 1), tensor([3, 4], 2), { out: new Float32Array(9) }), 'RangeError',
      /^Expected length 8 \(output dims \[2, 4\]\) for opts\.out but received length 9$/],
    ['a is a plain array', () => api.matmul([1, 2] as never, tensor([2], 1)), 'TypeError', /^Expected a Tensor .* for a but received Array\(2\)$/],
    ['transA is a string', () => api.matmul(tensor([2, 2], 1), tensor([2, 2], 2), { transA: 'yes' } as never), 'TypeError', /for opts\.transA/],
  ];
  it.each(cases)('%s', (_label, call, kind, message) => {
    const err = (() => { try { call(); } catch (e) { return e as Error; } throw new Error('did not throw'); })();
    expect(err.constructor.name).toBe(kind);
    expect(err.message).toMatch(message);
  });

  it('rejects an out that shares memory with the bias', () => {
    const buffer = new Float32Array(12);
    const bias = buffer.subarray(0, 4), out = buffer.subarray(2, 10);
    expect(() => api.matmul(tensor([2, 3], 1), tensor([3, 4], 2), { bias, out })).toThrow(/^Expected an array that does not overlap the inputs for opts\.out/);
  });
});
