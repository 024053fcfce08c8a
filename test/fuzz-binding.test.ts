// Fuzzes the raw addon, bypassing lib/validate.ts: the binding must re-check everything it relies
// on, so a direct call with malformed arguments throws a TypeError or RangeError and never reads
// or writes out of bounds. Under `npm run test:asan` the same calls run against the
// AddressSanitizer build, which turns any out-of-bounds access into a failure.
//
// For matmul and dot a small JS model of the binding's contract says whether a call is valid:
// invalid calls must throw, valid ones must not (and must compute the right thing), so a missing
// length check fails here even without the sanitizer.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { binding as loadBinding } from '../dist/backend.js';
import type { Binding } from '../dist/native.js';
import { badSizes, cleanError, detachedFloat32, FUZZ_RUNS, hostileValue, isDetached, notFloat32, sharedFloat32 } from './helpers/hostile';
import { expectClose, randomArray } from './helpers/oracle';

const raw = loadBinding() as Binding | null;
const suite = raw ? describe : describe.skip;
if (!raw) console.warn('[fuzz-binding] skipped: the native addon did not load');
const addon = raw as Binding;

const SIZE_LIMIT = 2n ** 64n - 1n;

function isUsableF32(value: unknown): value is Float32Array {
  return value instanceof Float32Array && !isDetached(value);
}

function isSize(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 2 ** 53;
}

// ---------------------------------------------------------------------------------------------
// matmul(a, b, bias | null, out, m, k, n, transA, transB, batch?)

/** Whether the binding must accept these arguments (see native/binding/matmul_binding.cc). */
function matmulIsValid(args: unknown[]): boolean {
  const [a, b, bias, out, m, k, n, transA, transB] = args;
  if (!isUsableF32(a) || !isUsableF32(b) || !isUsableF32(out)) return false;
  if (bias !== undefined && bias !== null && !isUsableF32(bias)) return false;
  if (!isSize(m) || !isSize(k) || !isSize(n)) return false;
  if (typeof transA !== 'boolean' || typeof transB !== 'boolean') return false;
  let batch = 1n, aLast = 0n, bLast = 0n;
  const info = args.length > 9 ? args[9] : undefined;
  if (info !== undefined && info !== null) {
    if (!(info instanceof Float64Array)) return false;
    if (info.length % 3 !== 0 || info.length / 3 > 8) return false;
    const r = info.length / 3;
    for (let i = 0; i < r; i++) {
      const [d, as, bs] = [info[i], info[r + i], info[2 * r + i]];
      if (![d, as, bs].every(isSize) || d === 0) return false;
      batch *= BigInt(d);
      aLast += BigInt(d - 1) * BigInt(as);
      bLast += BigInt(d - 1) * BigInt(bs);
      // The binding checks overflow step by step; any intermediate beyond size_t is invalid.
      if (batch > SIZE_LIMIT || aLast > SIZE_LIMIT || bLast > SIZE_LIMIT) return false;
    }
  }
  const [M, K, N] = [BigInt(m), BigInt(k), BigInt(n)];
  const needA = aLast + M * K, needB = bLast + K * N, needOut = batch * M * N;
  if (M * K > SIZE_LIMIT || K * N > SIZE_LIMIT || M * N > SIZE_LIMIT || needOut > SIZE_LIMIT) return false;
  if (needA > SIZE_LIMIT || needB > SIZE_LIMIT) return false;
  if (BigInt(a.length) < needA || BigInt(b.length) < needB || BigInt(out.length) < needOut) return false;
  // An empty bias has no data pointer and the binding treats it as absent (nothing is read).
  if (isUsableF32(bias) && bias.length > 0 && BigInt(bias.length) < N) return false;
  return true;
}

/** Float64 reference of the binding's documented semantics (batch strides, broadcast, trans). */
function matmulModel(args: unknown[]): Float64Array {
  const [a, b, bias, , m, k, n, transA, transB, info] = args as [
    Float32Array, Float32Array, Float32Array | null, Float32Array, number, number, number, boolean, boolean, Float64Array | undefined];
  const r = info ? info.length / 3 : 0;
  const dims = info ? Array.from(info.subarray(0, r)) : [];
  const batch = dims.reduce((p, d) => p * d, 1);
  const c = new Float64Array(batch * m * n);
  for (let bi = 0; bi < batch; bi++) {
    let rem = bi, aOff = 0, bOff = 0;
    for (let d = r - 1; d >= 0; d--) {
      const idx = rem % dims[d];
      rem = Math.floor(rem / dims[d]);
      aOff += idx * info![r + d];
      bOff += idx * info![2 * r + d];
    }
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = bias ? bias[j] : 0;
        for (let p = 0; p < k; p++) {
          s += a[aOff + (transA ? p * m + i : i * k + p)] * b[bOff + (transB ? j * k + p : p * n + j)];
        }
        c[bi * m * n + i * n + j] = s;
      }
    }
  }
  return c;
}

interface MatmulCall { args: unknown[]; label: string }

/** A valid raw matmul call: random sizes (0 included), trans flags, bias, broadcast batch strides, slack. */
const validMatmul: fc.Arbitrary<MatmulCall> = fc.record({
  m: fc.integer({ min: 0, max: 9 }),
  k: fc.integer({ min: 0, max: 9 }),
  n: fc.integer({ min: 0, max: 9 }),
  transA: fc.boolean(),
  transB: fc.boolean(),
  bias: fc.boolean(),
  batch: fc.array(fc.record({ dim: fc.integer({ min: 1, max: 3 }), aBroadcast: fc.boolean(), bBroadcast: fc.boolean() }), { maxLength: 3 }),
  slack: fc.integer({ min: 0, max: 2 }),
  offset: fc.integer({ min: 0, max: 3 }),
  seed: fc.nat(),
}).map(({ m, k, n, transA, transB, bias, batch, slack, offset, seed }) => {
  const r = batch.length;
  const aStrides = new Array<number>(r), bStrides = new Array<number>(r);
  let aStride = m * k, bStride = k * n;
  for (let i = r - 1; i >= 0; i--) {
    aStrides[i] = batch[i].aBroadcast ? 0 : aStride;
    bStrides[i] = batch[i].bBroadcast ? 0 : bStride;
    if (!batch[i].aBroadcast) aStride *= batch[i].dim;
    if (!batch[i].bBroadcast) bStride *= batch[i].dim;
  }
  const total = batch.reduce((p, d) => p * d.dim, 1);
  // Subarrays with a byteOffset: the binding must apply it (Napi::TypedArray::Data does).
  const view = (length: number, s: number) => randomArray(length + offset, s).subarray(offset);
  const args: unknown[] = [view(aStride + slack, seed), view(bStride + slack, seed + 1), bias ? view(n + slack, seed + 2) : null,
    new Float32Array(total * m * n + slack), m, k, n, transA, transB];
  if (r) args.push(Float64Array.from([...batch.map((d) => d.dim), ...aStrides, ...bStrides]));
  return { args, label: `m=${m} k=${k} n=${n} trans=${transA},${transB} batch=${JSON.stringify(batch)}` };
});

/** Batch descriptors built from sizes that are wrong in every way the binding must catch. */
const hostileBatch: fc.Arbitrary<unknown> = fc.oneof(
  fc.array(fc.constantFrom(0, 1, 2, 3, -1, NaN, 1.5, 2 ** 32, 2 ** 53, 2 ** 60, 2 ** 64, 1e300, Infinity, -Infinity), { maxLength: 30 })
    .map((values) => Float64Array.from(values)),
  fc.integer({ min: 0, max: 30 }).map((n) => new Float32Array(n)),
  hostileValue(),
);

function callMatmul(args: unknown[]): unknown {
  return (addon.matmul as (...a: unknown[]) => unknown)(...args);
}

function expectMatmulContract(args: unknown[]): void {
  if (matmulIsValid(args)) {
    expect(callMatmul(args)).toBeUndefined();
    const [, , , out, m, , n] = args as [unknown, unknown, unknown, Float32Array, number, number, number];
    if (m > 0 && n > 0) {
      const expected = matmulModel(args);
      expectClose(out.subarray(0, expected.length), expected, 1e-5, 1e-4, 'raw matmul');
    }
  } else {
    cleanError(() => callMatmul(args));
  }
}

suite('raw binding: matmul', () => {
  it('computes valid calls (sizes 0..9, broadcast batch strides, byteOffset, slack) like the model', () => {
    fc.assert(fc.property(validMatmul, ({ args }) => {
      expect(matmulIsValid(args)).toBe(true);
      expectMatmulContract(args);
    }), { numRuns: FUZZ_RUNS });
  });

  it('rejects every array that is one element too short', () => {
    fc.assert(fc.property(validMatmul, fc.constantFrom(0, 1, 2, 3), ({ args }, which) => {
      const target = args[which] as Float32Array | null;
      const needed = requiredLength(which, args);
      fc.pre(target !== null && needed > (which === 2 ? 1 : 0));
      const shortArgs = [...args];
      shortArgs[which] = (target as Float32Array).subarray(0, needed - 1);
      expect(matmulIsValid(shortArgs)).toBe(false);
      cleanError(() => callMatmul(shortArgs), 'RangeError');
    }), { numRuns: FUZZ_RUNS });
  });

  it('answers arguments replaced by hostile values exactly as the contract says (throw iff invalid)', () => {
    const replacement = fc.array(fc.tuple(fc.integer({ min: 0, max: 9 }), fc.oneof(hostileValue(), hostileBatch)), { minLength: 1, maxLength: 3 });
    fc.assert(fc.property(validMatmul, replacement, fc.integer({ min: 0, max: 10 }), ({ args }, swaps, keep) => {
      const bad = [...args];
      for (const [index, value] of swaps) bad[index] = value;
      expectMatmulContract(bad.slice(0, Math.max(keep, 0) || bad.length));
    }), { numRuns: FUZZ_RUNS });
  });

  it('rejects batch descriptors whose strides overflow or point past the end', () => {
    const a = new Float32Array(16), b = new Float32Array(16), out = new Float32Array(64);
    const cases: [string, number[]][] = [
      ['stride past the end', [2, 16, 0]],
      ['stride 2^52', [2, 2 ** 52, 0]],
      ['dims * stride overflows size_t', [2 ** 40, 2 ** 40, 0]],
      ['batch product overflows size_t', [2 ** 33, 2 ** 33, 0, 0, 0, 0]],
      ['stride sum overflows size_t', [2 ** 52, 2 ** 52, 2 ** 13, 2 ** 13, 0, 0]],
      ['zero dim', [0, 0, 0]],
      ['NaN dim', [NaN, 0, 0]],
      ['fractional stride', [2, 0.5, 0]],
      ['negative stride', [2, -4, 0]],
      ['infinite stride', [2, Infinity, 0]],
      ['huge non-integer-representable stride', [2, 1e300, 0]],
      ['length not a multiple of 3', [1, 0]],
      ['rank 9', new Array<number>(27).fill(1)],
    ];
    for (const [label, values] of cases) {
      const args = [a, b, null, out, 2, 2, 2, false, false, Float64Array.from(values)];
      expect(matmulIsValid(args), label).toBe(false);
      cleanError(() => callMatmul(args), 'RangeError');
    }
    cleanError(() => callMatmul([a, b, null, out, 2, 2, 2, false, false, new Float32Array(3)]), 'TypeError');
    cleanError(() => callMatmul([a, b, null, out, 2, 2, 2, false, false, [1, 0, 0]]), 'TypeError');
  });

  it('rejects sizes that are not non-negative safe integers, and size products beyond size_t', () => {
    const a = new Float32Array(4), b = new Float32Array(4), out = new Float32Array(4);
    for (const bad of badSizes) {
      for (const position of [4, 5, 6]) {
        const args: unknown[] = [a, b, null, out, 2, 2, 2, false, false];
        args[position] = bad;
        cleanError(() => callMatmul(args));
      }
    }
    cleanError(() => callMatmul([a, b, null, out, 2 ** 33, 2 ** 33, 2 ** 33, false, false]), 'RangeError');
    cleanError(() => callMatmul([a, b, null, out, 2 ** 53, 2 ** 53, 1, false, false]), 'RangeError');
    cleanError(() => callMatmul([a, b, null, out, 0, 2 ** 53, 2 ** 53, false, false]), 'RangeError');
  });

  it('rejects non-Float32Array and detached operands, and missing arguments', () => {
    const ok = () => [new Float32Array(4), new Float32Array(4), null, new Float32Array(4), 2, 2, 2, false, false];
    for (const position of [0, 1, 2, 3]) {
      for (const [label, make] of notFloat32) {
        if (position === 2 && (label === 'undefined' || label === 'null')) continue;
        const args = ok();
        args[position] = make();
        cleanError(() => callMatmul(args), 'TypeError');
      }
      const args = ok();
      args[position] = detachedFloat32(4);
      cleanError(() => callMatmul(args), 'TypeError');
    }
    for (const position of [7, 8]) {
      for (const bad of [0, 1, 'true', null, undefined, {}]) {
        const args = ok();
        args[position] = bad;
        cleanError(() => callMatmul(args), 'TypeError');
      }
    }
    for (let length = 0; length < 9; length++) cleanError(() => callMatmul(ok().slice(0, length)));
  });

  it('accepts operands backed by a SharedArrayBuffer', () => {
    const a = sharedFloat32([1, 2, 3, 4]), b = sharedFloat32([5, 6, 7, 8]), out = sharedFloat32([0, 0, 0, 0]);
    callMatmul([a, b, null, out, 2, 2, 2, false, false]);
    expect(Array.from(out)).toEqual([19, 22, 43, 50]);
  });
});

/** Elements a valid call reads from (or writes to) argument `which`: a, b, bias or out. */
function requiredLength(which: number, args: unknown[]): number {
  const [, , , , m, k, n] = args as number[];
  const info = args[9] as Float64Array | undefined;
  const r = info ? info.length / 3 : 0;
  let aLast = 0, bLast = 0, batch = 1;
  for (let i = 0; i < r; i++) {
    batch *= info![i];
    aLast += (info![i] - 1) * info![r + i];
    bLast += (info![i] - 1) * info![2 * r + i];
  }
  return [aLast + m * k, bLast + k * n, n, batch * m * n][which];
}

// ---------------------------------------------------------------------------------------------
// dot(a, b) and the runtime functions

suite('raw binding: dot and runtime', () => {
  it('dot throws unless both are usable Float32Arrays of equal length', () => {
    const dot = addon.dot as (...a: unknown[]) => unknown;
    fc.assert(fc.property(hostileValue(), hostileValue(), (a, b) => {
      const valid = isUsableF32(a) && isUsableF32(b) && a.length === b.length;
      if (valid) expect(typeof dot(a, b)).toBe('number');
      else cleanError(() => dot(a, b));
    }), { numRuns: FUZZ_RUNS });
    cleanError(() => dot(detachedFloat32(3), new Float32Array(3)), 'TypeError');
    cleanError(() => dot(new Float32Array(3), new Float32Array(4)), 'RangeError');
    cleanError(() => dot(new Float32Array(3)), 'TypeError');
    expect(dot(sharedFloat32([1, 2, 3]), new Float32Array([4, 5, 6]))).toBe(32);
  });

  it('setNumThreads rejects anything but an integer in [1, 4096] and keeps the old count', () => {
    const before = addon.info().threads;
    for (const bad of [...badSizes, 0, 4097, 2 ** 31, -(2 ** 31)]) {
      cleanError(() => (addon.setNumThreads as (n: unknown) => void)(bad));
      expect(addon.info().threads).toBe(before);
    }
  });

  it('selectIsa rejects non-strings and answers false for unknown kernel sets', () => {
    const before = addon.info().isa;
    for (const bad of [undefined, null, 1, {}, ['avx2']]) cleanError(() => (addon.selectIsa as (s: unknown) => boolean)(bad), 'TypeError');
    try {
      for (const name of ['', 'avx512', 'neon', 'AVX2', 'scalar\0avx2', 'x'.repeat(10000)]) {
        if (addon.info().isas.includes(name)) continue;
        expect(addon.selectIsa(name), JSON.stringify(name.slice(0, 20))).toBe(false);
        expect(addon.info().isa).toBe(before);
      }
    } finally {
      addon.selectIsa(before);
    }
  });
});
