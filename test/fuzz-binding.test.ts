// Fuzzes the raw addon, bypassing lib/validate.ts: the binding must re-check everything it relies
// on, so a direct call with malformed arguments throws a TypeError or RangeError and never reads
// or writes out of bounds. Under `npm run test:asan` the same calls run against the
// AddressSanitizer build, which turns any out-of-bounds access into a failure.
//
// For matmul and dot a small JS model of the binding's contract says whether a call is valid:
// invalid calls must throw, valid ones must not (and must compute the right thing), so a missing
// length check fails here even without the sanitizer.
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Binding } from '../dist/native/binding.js';
import { loaded } from '../dist/native/load.js';
import { createWire } from '../dist/native/wire.js';
import { validateAttention, type AttentionPlan } from '../dist/validate-attention.js';
import { badSizes, cleanError, detachedFloat32, FUZZ_RUNS, hostileValue, isDetached, notFloat32, sharedFloat32 } from './helpers/hostile';
import { api } from './helpers/backends';
import { expectClose, randomArray } from './helpers/oracle';

const raw = loaded.binding as Binding | null;
// Field name -> index of the attention parameter struct (native/binding/wire.h).
const wire = raw ? createWire(raw.wire) : null;
const F = wire ? wire.attentionFields : ({} as Record<string, number>);
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
  // A given bias must cover n even when m = 0 or it is empty: a short bias is a caller's bug.
  if (isUsableF32(bias) && BigInt(bias.length) < N) return false;
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

// ---------------------------------------------------------------------------------------------
// attention(q, k, v, y, mask, kvValid, causalOffset, qkOut, params) and attentionAsync

interface AttentionCall { args: unknown[]; plan: AttentionPlan; label: string; public: () => { y: Float32Array; qk?: Float32Array } }

/** A valid raw call, built by the public validation layer from random shapes and options. */
const validAttention: fc.Arbitrary<AttentionCall> = fc.record({
  rank: fc.constantFrom(3, 4), B: fc.integer({ min: 1, max: 2 }), Hkv: fc.integer({ min: 1, max: 2 }), group: fc.integer({ min: 1, max: 3 }),
  Sq: fc.integer({ min: 1, max: 12 }), Skv: fc.integer({ min: 1, max: 20 }), D: fc.integer({ min: 1, max: 17 }), Dv: fc.integer({ min: 1, max: 9 }),
  causal: fc.boolean(), mask: fc.constantFrom('none', 'bool', 'float'), maskShort: fc.integer({ min: 0, max: 3 }),
  nonpad: fc.boolean(), mode: fc.constantFrom(undefined, 0, 1, 2, 3), softcap: fc.constantFrom(0, 3), seed: fc.nat(),
}).map((c) => {
  const Hq = c.Hkv * c.group;
  const dims = (H: number, S: number, d: number) => (c.rank === 4 ? [c.B, H, S, d] : [c.B, S, H * d]);
  const t = (d: number[], s: number) => ({ data: randomArray(d.reduce((p, x) => p * x, 1), s), dims: d });
  const opts: Record<string, unknown> = { isCausal: c.causal, softcap: c.softcap, qkMatmulOutputMode: c.mode };
  if (c.rank === 3) Object.assign(opts, { qNumHeads: Hq, kvNumHeads: c.Hkv });
  const len = Math.max(1, c.Skv - c.maskShort);
  if (c.mask === 'float') opts.attnMask = t([c.Sq, len], c.seed + 3);
  if (c.mask === 'bool') opts.attnMask = { data: Uint8Array.from({ length: c.Sq * len }, (_, i) => (i * 7 + c.seed) % 3), dims: [c.Sq, len] };
  if (c.nonpad) opts.nonpadKvSeqlen = Int32Array.from({ length: c.B }, (_, b) => (c.seed + b) % (c.Skv + 1));
  if (c.mode === undefined) delete opts.qkMatmulOutputMode;
  const tq = t(dims(Hq, c.Sq, c.D), c.seed), tk = t(dims(c.Hkv, c.Skv, c.D), c.seed + 1), tv = t(dims(c.Hkv, c.Skv, c.Dv), c.seed + 2);
  const { plan, q, k, v } = validateAttention(tq, tk, tv, opts);
  const y = new Float32Array(plan.yDims.reduce((p, x) => p * x, 1));
  const qk = plan.qkDims ? new Float32Array(plan.qkDims.reduce((p, x) => p * x, 1)) : null;
  const args = [q, k, v, y, plan.mask?.data ?? null, plan.kvValid, plan.causalOffset, qk, wire!.attention(plan)];
  const viaFacade = () => {
    api.useBackend('native');
    const result = api.attention(tq, tk, tv, opts);
    return { y: result.y.data, qk: result.qkMatmulOutput?.data };
  };
  return { args, plan, label: JSON.stringify(c), public: viaFacade };
});

const MAX64 = 2n ** 64n - 1n, WRAP = 2n ** 64n;

function isDetachedView(value: ArrayBufferView): boolean {
  return value.byteLength === 0 && isDetached(value);
}

/** A typed array of exactly this kind that is not detached (the binding's read_typed). */
function isUsable(value: unknown, kind: 'Float32Array' | 'Uint8Array' | 'Int32Array' | 'Float64Array'): value is ArrayBufferView & ArrayLike<number> {
  return ArrayBuffer.isView(value) && !(value instanceof DataView) && Object.prototype.toString.call(value) === `[object ${kind}]` && !isDetachedView(value);
}

/** view_extent in attention_binding.cc: (B-1)sb + (H-1)sh + (S-1)st + D, or 0 for an empty view; null when a step overflows size_t. */
function viewExtent(B: bigint, H: bigint, S: bigint, D: bigint, sb: bigint, sh: bigint, st: bigint): bigint | null {
  if (B === 0n || H === 0n || S === 0n || D === 0n) return 0n;
  let e = 0n;
  for (const term of [(B - 1n) * sb, (H - 1n) * sh, (S - 1n) * st, D]) {
    if (term > MAX64) return null;
    e += term;
    if (e > MAX64) return null;
  }
  return e;
}

/** injective() in attention_binding.cc, with its size_t arithmetic (wrapping mod 2^64). */
function injective(B: bigint, H: bigint, S: bigint, D: bigint, sb: bigint, sh: bigint, st: bigint): boolean {
  const dims: [bigint, bigint][] = [[1n, D], [st, S], [sh, H], [sb, B]];
  dims.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0));
  let reach = 0n;
  for (const [stride, size] of dims) {
    if (size <= 1n) continue;
    if (stride <= reach) return false;
    reach = (reach + ((size - 1n) * stride) % WRAP) % WRAP;
  }
  return true;
}

/**
 * Whether the raw attention(q, k, v, y, mask, kvValid, causalOffset, qkOut, params) must accept
 * these arguments: a model of prepare() in native/binding/attention_binding.cc (params is the
 * struct named in native/binding/wire.h; F gives each field's index).
 */
function attentionIsValid(args: unknown[]): boolean {
  const [q, k, v, y, mask, kvValid, causalOffset, qk, params] = args;
  if (![q, k, v, y].every((a) => isUsable(a, 'Float32Array'))) return false;
  if (!isUsable(params, 'Float64Array') || params.length !== Object.keys(F).length) return false;
  const field = (name: string) => params[(F as Record<string, number>)[name]];
  const size = (name: string): bigint | null => (is53Size(field(name)) ? BigInt(field(name)) : null);
  const names = ['B', 'Hq', 'Hkv', 'Sq', 'Skv', 'D', 'Dv', 'qSb', 'qSh', 'qSt', 'kSb', 'kSh', 'kSt', 'vSb', 'vSh', 'vSt', 'ySb', 'ySh', 'ySt'];
  const z: Record<string, bigint> = {};
  for (const name of names) {
    const value = size(name);
    if (value === null) return false;
    z[name] = value;
  }
  if (z.Hq === 0n || z.Hkv === 0n || z.Hq % z.Hkv !== 0n) return false;
  const scale = field('scale'), softcap = field('softcap'), causal = field('causal'), mode = field('qkMode');
  if (!Number.isFinite(scale) || !Number.isFinite(softcap) || softcap < 0) return false;
  if (causal !== 0 && causal !== 1) return false;
  if (![-1, 0, 1, 2, 3].includes(mode)) return false;
  const extent = (H: bigint, S: bigint, D: bigint, p: string) => viewExtent(z.B, H, S, D, z[`${p}Sb`], z[`${p}Sh`], z[`${p}St`]);
  const qExt = extent(z.Hq, z.Sq, z.D, 'q'), kExt = extent(z.Hkv, z.Skv, z.D, 'k');
  const vExt = extent(z.Hkv, z.Skv, z.Dv, 'v'), yExt = extent(z.Hq, z.Sq, z.Dv, 'y');
  if (qExt === null || kExt === null || vExt === null || yExt === null) return false;
  const f32 = (a: unknown) => a as Float32Array;
  if (BigInt(f32(q).length) < qExt || BigInt(f32(k).length) < kExt || BigInt(f32(v).length) < vExt || BigInt(f32(y).length) < yExt) return false;
  if (!injective(z.B, z.Hq, z.Sq, z.Dv, z.ySb, z.ySh, z.ySt)) return false;
  if (qExt !== 0n && !injective(z.B, z.Hq, z.Sq, z.D, z.qSb, z.qSh, z.qSt)) return false;
  if (kExt !== 0n && !injective(z.B, z.Hkv, z.Skv, z.D, z.kSb, z.kSh, z.kSt)) return false;
  if (vExt !== 0n && !injective(z.B, z.Hkv, z.Skv, z.Dv, z.vSb, z.vSh, z.vSt)) return false;
  if (z.D === 0n && z.Dv === 0n && mode < 0) return false;
  // Byte ranges [begin, end) of the arrays the kernel reads, for the overlap checks.
  type Range = { buffer: ArrayBufferLike; begin: bigint; end: bigint };
  const range = (a: ArrayBufferView & { BYTES_PER_ELEMENT: number }, elements: bigint): Range =>
    ({ buffer: a.buffer, begin: BigInt(a.byteOffset), end: BigInt(a.byteOffset) + elements * BigInt(a.BYTES_PER_ELEMENT) });
  const overlaps = (a: Range, b: Range) => a.begin !== a.end && b.begin !== b.end && a.buffer === b.buffer && a.begin < b.end && b.begin < a.end;
  const inputs: Range[] = [range(f32(q), qExt), range(f32(k), kExt), range(f32(v), vExt)];
  if (mask !== null && mask !== undefined) {
    if (!isUsable(mask, 'Float32Array') && !isUsable(mask, 'Uint8Array')) return false;
    const m: Record<string, bigint> = {};
    for (const name of ['maskSb', 'maskSh', 'maskSq', 'maskLen']) {
      const value = size(name);
      if (value === null) return false;
      m[name] = value;
    }
    if (m.maskLen > z.Skv) return false;
    const mExt = viewExtent(z.B, z.Hq, z.Sq, m.maskLen, m.maskSb, m.maskSh, m.maskSq);
    if (mExt === null || BigInt((mask as Float32Array).length) < mExt) return false;
    inputs.push(range(mask as Float32Array, mExt));
  }
  for (const lengths of [kvValid, causalOffset]) {
    if (lengths === null || lengths === undefined) continue;
    if (!isUsable(lengths, 'Int32Array') || BigInt(lengths.length) !== z.B) return false;
    if (lengths === kvValid && Array.from(lengths as Int32Array).some((n) => n < 0 || BigInt(n) > z.Skv)) return false;
    inputs.push(range(lengths as Int32Array, BigInt((lengths as Int32Array).length)));
  }
  const hasQk = qk !== null && qk !== undefined;
  if (hasQk && !isUsable(qk, 'Float32Array')) return false;
  if (mode >= 0) {
    if (!hasQk) return false;
    const need = z.B * z.Hq * z.Sq * z.Skv;
    if (z.B * z.Hq > MAX64 || z.B * z.Hq * z.Sq > MAX64 || need > MAX64 || BigInt(f32(qk).length) < need) return false;
    const qkRange = range(f32(qk), need);
    if (inputs.some((r) => overlaps(qkRange, r))) return false;
    inputs.push(qkRange);
  } else if (hasQk) {
    return false;
  }
  const yRange = range(f32(y), yExt);
  return !inputs.some((r) => overlaps(yRange, r));
}

/** A short description of any value, safe for detached typed arrays (whose toString throws). */
function show(value: unknown): string {
  if (ArrayBuffer.isView(value)) {
    const name = Object.prototype.toString.call(value).slice(8, -1);
    return isDetached(value) ? `detached ${name}` : `${name}(${(value as Float32Array).length ?? value.byteLength}) at byte ${value.byteOffset}`;
  }
  return typeof value === 'bigint' ? `${value}n` : typeof value === 'function' ? 'function' : JSON.stringify(value) ?? String(value);
}

function is53Size(d: number): boolean {
  return d >= 0 && d === Math.floor(d) && d <= 2 ** 53;
}

function callAttention(args: unknown[]): unknown {
  return (addon.attention as (...a: unknown[]) => unknown)(...args);
}

/** Elements argument `which` (q, k, v, y, mask or qkOut) must hold for this plan. */
function attentionNeed(which: number, plan: AttentionPlan): number {
  const extent = (H: number, S: number, d: number, v: { sb: number; sh: number; st: number }) =>
    (plan.B - 1) * v.sb + (H - 1) * v.sh + (S - 1) * v.st + d;
  switch (which) {
    case 0: return extent(plan.Hq, plan.Sq, plan.D, plan.q);
    case 1: return extent(plan.Hkv, plan.total, plan.D, plan.k);
    case 2: return extent(plan.Hkv, plan.total, plan.Dv, plan.v);
    case 3: return extent(plan.Hq, plan.Sq, plan.Dv, plan.y);
    case 4: return extent(plan.Hq, plan.Sq, plan.mask!.len, { sb: plan.mask!.sb, sh: plan.mask!.sh, st: plan.mask!.sq });
    default: return plan.B * plan.Hq * plan.Sq * plan.total;
  }
}

suite('raw binding: attention', () => {
  it('computes valid calls exactly like the public attention()', () => {
    fc.assert(fc.property(validAttention, ({ args, label, public: viaFacade }) => {
      expect(callAttention(args), label).toBeUndefined();
      const want = viaFacade();
      expect(args[3], label).toEqual(want.y);
      if (want.qk) expect(args[7], label).toEqual(want.qk);
    }), { numRuns: FUZZ_RUNS });
  });

  it('rejects q, k, v, y, mask or qkOut one element too short, and an overlapping y or qkOut', () => {
    fc.assert(fc.property(validAttention, fc.constantFrom(0, 1, 2, 3, 4, 7), ({ args, plan }, which) => {
      const target = args[which] as Float32Array | Uint8Array | null;
      fc.pre(target !== null);
      const short = [...args];
      short[which] = target.subarray(0, attentionNeed(which === 7 ? 5 : which, plan) - 1);
      cleanError(() => callAttention(short), 'RangeError');
    }), { numRuns: FUZZ_RUNS });
    fc.assert(fc.property(validAttention, fc.constantFrom(0, 1, 2), ({ args }, which) => {
      const aliased = [...args];
      aliased[3] = args[which];
      fc.pre((args[which] as Float32Array).length >= (args[3] as Float32Array).length);
      cleanError(() => callAttention(aliased), 'RangeError');
    }), { numRuns: FUZZ_RUNS });
  });

  it('answers hostile arguments and params exactly as the model says: a clean error iff the call is invalid', () => {
    const paramValue = fc.oneof(fc.constantFrom(-1, 0.5, NaN, Infinity, -Infinity, 2 ** 31, 2 ** 53, 2 ** 64, 1e300, 0, 1, 2), fc.integer({ min: 0, max: 64 }));
    // Aliased outputs too: y or qkOut over an input (or a subarray of one).
    const alias = fc.tuple(fc.constantFrom(3, 7), fc.constantFrom(0, 1, 2, 4), fc.nat(8));
    let valid = 0, invalid = 0;
    fc.assert(fc.property(validAttention, fc.array(fc.tuple(fc.integer({ min: 0, max: 8 }), hostileValue()), { maxLength: 2 }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 26 }), paramValue), { maxLength: 3 }), fc.option(alias), ({ args, label }, swaps, paramSwaps, aliasing) => {
        const bad = [...args];
        for (const [i, value] of swaps) bad[i] = value;
        const params = Float64Array.from(args[8] as Float64Array);
        for (const [i, value] of paramSwaps) params[i] = value;
        if (!swaps.some(([i]) => i === 8)) bad[8] = params;
        if (aliasing) {
          const [output, input, offset] = aliasing, source = bad[input];
          if (ArrayBuffer.isView(source) && source instanceof Float32Array && !isDetached(source)) bad[output] = source.subarray(Math.min(offset, source.length));
        }
        const expectValid = attentionIsValid(bad);
        if (expectValid) valid++;
        else invalid++;
        const what = `${label} swaps ${JSON.stringify(swaps.map(([i, value]) => [i, show(value)]))} params ${JSON.stringify(paramSwaps)} alias ${JSON.stringify(aliasing)}`;
        if (expectValid) expect(() => callAttention(bad), `valid by the model, but threw: ${what}`).not.toThrow();
        else cleanError(() => callAttention(bad));
      }), { numRuns: FUZZ_RUNS });
    // Both sides of the contract were exercised.
    expect(valid).toBeGreaterThan(0);
    expect(invalid).toBeGreaterThan(0);
  });

  it('attentionIsValid agrees with the valid calls and rejects the deliberately broken ones', () => {
    fc.assert(fc.property(validAttention, ({ args, plan }) => {
      expect(attentionIsValid(args)).toBe(true);
      const params = (changes: Record<string, number>) => {
        const p = Float64Array.from(args[8] as Float64Array);
        for (const [name, value] of Object.entries(changes)) p[(F as Record<string, number>)[name]] = value;
        return [...args.slice(0, 8), p];
      };
      for (const broken of [params({ Hkv: plan.Hq + 1 }), params({ causal: 0.5 }), params({ scale: NaN }), params({ qkMode: 4 }), params({ softcap: -1 }),
        params({ ySt: 0, ySh: 0, ySb: 0, Sq: 2, Dv: 1 }), [args[0], args[1], args[2], args[0], ...args.slice(4)]]) {
        expect(attentionIsValid(broken)).toBe(false);
        cleanError(() => callAttention(broken));
      }
    }), { numRuns: Math.min(FUZZ_RUNS, 50) });
  });

  it('clamps any causal offset: beyond the keys sees everything, before them sees nothing (zeros)', () => {
    fc.assert(fc.property(validAttention, ({ args, plan }) => {
      fc.pre(plan.qkMode < 0 && plan.kvValid === null && plan.mask === null);
      const params = Float64Array.from(args[8] as Float64Array);
      params[F.causal] = 1;
      const run = (offset: number) => {
        const y = new Float32Array((args[3] as Float32Array).length);
        callAttention([args[0], args[1], args[2], y, null, null, Int32Array.from({ length: plan.B }, () => offset), null, params]);
        return y;
      };
      const open = new Float32Array((args[3] as Float32Array).length);
      const plain = Float64Array.from(params);
      plain[F.causal] = 0;
      callAttention([args[0], args[1], args[2], open, null, null, null, null, plain]);
      for (const offset of [plan.Skv, 2 ** 31 - 1]) expect(run(offset)).toEqual(open);
      for (const offset of [-plan.Sq, -(2 ** 31)]) expect(Array.from(run(offset)).every((x) => x === 0)).toBe(true);
    }), { numRuns: Math.min(FUZZ_RUNS, 100) });
  });

  it('rejects kvValid out of [0, Skv] or of the wrong length, and mask_len > Skv', () => {
    fc.assert(fc.property(validAttention, fc.constantFrom(-1, 1, -(2 ** 31)), ({ args, plan }, delta) => {
      const kvValid = new Int32Array(plan.B).fill(delta === 1 ? plan.Skv + 1 : delta);
      cleanError(() => callAttention([...args.slice(0, 5), kvValid, ...args.slice(6)]), 'RangeError');
      cleanError(() => callAttention([...args.slice(0, 5), new Int32Array(plan.B + 1), ...args.slice(6)]), 'RangeError');
      if (plan.mask) {
        const params = Float64Array.from(args[8] as Float64Array);
        params[F.maskLen] = plan.Skv + 1;
        cleanError(() => callAttention([...args.slice(0, 8), params]), 'RangeError');
      }
    }), { numRuns: Math.min(FUZZ_RUNS, 100) });
  });

  it('attentionAsync rejects bad arguments (never throws) and rejects detached inputs before queueing', async () => {
    const [{ args }] = fc.sample(validAttention, { numRuns: 1, seed: 7 });
    const runAsync = addon.attentionAsync as (...a: unknown[]) => Promise<unknown>;
    // attentionAsync(q, k, v, mask, kvValid, causalOffset, params): no y or qkOut, it creates them.
    const asyncArgs = [args[0], args[1], args[2], args[4], args[5], args[6], args[8]];
    for (const [position, value] of [[0, null], [3, new Float64Array(4)], [6, new Float64Array(26)], [1, detachedFloat32(8)]] as const) {
      const bad = [...asyncArgs];
      bad[position] = value;
      let promise: Promise<unknown> | undefined;
      expect(() => { promise = runAsync(...bad); }).not.toThrow();
      const err = await promise!.then(() => null, (e: Error) => e);
      expect(['TypeError', 'RangeError']).toContain(err?.constructor.name);
    }
    await expect(runAsync(...asyncArgs)).resolves.toMatchObject({ y: expect.any(Float32Array) });
  });

  it('loop counts are bounded by real array lengths: zero head sizes or zero strides cannot spin on 2^40 keys', () => {
    // Run in a child: a binding that accepted these would loop for hours inside one sync call.
    const script = `
      const b = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'native', 'load.js'))}).loaded.binding;
      const e = new Float32Array(0), one = new Float32Array(64);
      // values in the struct's field order (native/binding/wire.h): sizes, then q/k/v/y strides.
      const names = b.wire.attention;
      const params = (values) => { const p = new Float64Array(names.length); p.set(values); p[names.indexOf('scale')] = 1; p[names.indexOf('qkMode')] = -1; return p; };
      const cases = [
        [e, e, e, e, params([1, 1, 1, 1, 2 ** 40, 0, 0])],
        [one, one, one, one, params([1, 1, 1, 1, 2 ** 40, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1])],
        [e, e, e, e, params([2 ** 40, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1])],
      ];
      const outcomes = cases.map(([q, k, v, y, p]) => { try { b.attention(q, k, v, y, null, null, null, null, p); return 'returned'; } catch (err) { return err.constructor.name; } });
      console.log(JSON.stringify(outcomes));
    `;
    const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 5_000 });
    expect(child.signal, `child ${child.signal ?? ''}: a raw attention call did not return within 5 s`).toBeNull();
    expect(JSON.parse(child.stdout), child.stderr).toEqual(['RangeError', 'RangeError', 'RangeError']);
  }, 15_000);

  it('_vecExpsum rejects non-Float32Array x and non-number max', () => {
    const expsum = addon._vecExpsum as (...a: unknown[]) => unknown;
    for (const [, make] of notFloat32) cleanError(() => expsum(make(), 0), 'TypeError');
    cleanError(() => expsum(new Float32Array(4), '0'), 'TypeError');
    cleanError(() => expsum(detachedFloat32(4), 0), 'TypeError');
    expect(expsum(new Float32Array(0), 0)).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// KVCache(batch, numKVHeads, headDim, maxSeqLen, dtype?) and MultiHeadAttention(params, wq..bo)

type Ctor = new (...args: unknown[]) => Record<string, (...a: unknown[]) => unknown> & { length: number; disposed: boolean };

suite('raw binding: KVCache and MultiHeadAttention', () => {
  const KV = () => addon.KVCache as unknown as Ctor;
  const MHA = () => addon.MultiHeadAttention as unknown as Ctor;

  it('KVCache: constructor arguments throw iff they are not sizes in range', () => {
    fc.assert(fc.property(fc.array(fc.oneof(hostileValue(), fc.integer({ min: 0, max: 6 })), { minLength: 0, maxLength: 6 }), (args) => {
      const sizes = args.slice(0, 4), dtype = args[4];
      // dtype: attn::DType, 0 F32, 1 F16, 2 BF16, or absent.
      const dtypeOk = dtype === undefined || (isSize(dtype) && (dtype as number) <= 2);
      const valid = sizes.length === 4 && sizes.every((d) => isSize(d) && d >= 1) && (sizes[3] as number) <= 2 ** 31 - 1 &&
        (sizes as number[]).reduce((p, d) => p * d, 1) <= 2 ** 20 && dtypeOk;
      if (valid) {
        const cache = new (KV())(...args);
        expect(cache.length).toBe(0);
        cache.dispose();
      } else if (dtypeOk && (sizes as number[]).every((d) => isSize(d) && d >= 1) && sizes.length === 4 && (sizes[3] as number) <= 2 ** 31 - 1) {
        return; // valid sizes whose product is merely large: allocation, not validation, decides
      } else {
        cleanError(() => new (KV())(...args));
      }
    }), { numRuns: FUZZ_RUNS });
    cleanError(() => (KV() as unknown as (...a: unknown[]) => unknown)(1, 1, 1, 1), 'TypeError');
    cleanError(() => new (KV())(2 ** 20, 2 ** 20, 2 ** 20, 2 ** 20), 'RangeError');
    cleanError(() => new (KV())(1, 1, 1, 2 ** 31), 'RangeError');
  });

  it('KVCache: methods check their arguments, their receiver, and disposal', () => {
    const cache = new (KV())(2, 3, 4, 8);
    for (const bad of [...badSizes, 1]) cleanError(() => cache.truncate(bad));
    for (const [, make] of notFloat32) cleanError(() => cache.read(make(), new Float32Array(0)), 'TypeError');
    cleanError(() => cache.read(detachedFloat32(4), new Float32Array(0)), 'TypeError');
    cleanError(() => (KV() as unknown as { prototype: Record<string, (...a: unknown[]) => unknown> }).prototype.read.call({}, new Float32Array(1), new Float32Array(1)), 'TypeError');
    cleanError(() => (KV() as unknown as { prototype: Record<string, (...a: unknown[]) => unknown> }).prototype.truncate.call(Object.create(KV().prototype), 0), 'TypeError');
    // reset() takes no arguments: extra (hostile) ones are ignored, and it empties the cache.
    fc.assert(fc.property(fc.array(hostileValue(), { maxLength: 3 }), (extra) => {
      expect(cache.reset(...extra)).toBeUndefined();
      expect(cache.length).toBe(0);
    }), { numRuns: Math.min(FUZZ_RUNS, 50) });
    cleanError(() => (KV() as unknown as { prototype: Record<string, (...a: unknown[]) => unknown> }).prototype.reset.call({}), 'TypeError');
    cache.dispose();
    cache.dispose();
    expect(cache.disposed).toBe(true);
    expect(() => cache.read(new Float32Array(0), new Float32Array(0))).toThrow(/disposed/);
    expect(() => cache.truncate(0)).toThrow(/disposed/);
    expect(() => cache.reset()).toThrow(/disposed/);
    expect(cache.length).toBe(0);
  });

  const layerCall = fc.record({
    dIn: fc.integer({ min: 1, max: 8 }), Hkv: fc.integer({ min: 1, max: 2 }), group: fc.integer({ min: 1, max: 2 }), D: fc.integer({ min: 1, max: 4 }),
    dOut: fc.integer({ min: 0, max: 6 }), biases: fc.boolean(), B: fc.integer({ min: 1, max: 2 }), S: fc.integer({ min: 1, max: 5 }),
    cache: fc.boolean(), mask: fc.constantFrom('none', 'f32', 'u8'), seed: fc.nat(),
  }).map((c) => {
    const Hq = c.Hkv * c.group, dOut = c.dOut || Hq * c.D;
    const w = (n: number, s: number) => randomArray(n, c.seed + s);
    // SharedArrayBuffer-backed, as lib/mha.ts passes them: forwardAsync refuses weights that could be detached.
    const sw = (n: number, s: number) => sharedFloat32(w(n, s));
    const weights = [sw(c.dIn * Hq * c.D, 1), sw(c.dIn * c.Hkv * c.D, 2), sw(c.dIn * c.Hkv * c.D, 3), c.dOut ? sw(Hq * c.D * dOut, 4) : null,
      c.biases ? sw(Hq * c.D, 5) : null, c.biases ? sw(c.Hkv * c.D, 6) : null, c.biases ? sw(c.Hkv * c.D, 7) : null, c.biases && c.dOut ? sw(dOut, 8) : null];
    const params = Float64Array.of(c.dIn, dOut, Hq, c.Hkv, c.D, 1, 1 / Math.sqrt(c.D), 0); // wire.mha, rotaryDim 0
    const cache = c.cache ? new (KV())(c.B, c.Hkv, c.D, 16) : null;
    const len = c.S;
    const mask = c.mask === 'none' ? null : c.mask === 'f32' ? w(c.S * len, 9) : Uint8Array.from({ length: c.S * len }, (_, i) => (i + c.seed) % 2);
    const offsets = Int32Array.from({ length: c.B }, (_, b) => b); // positionOffsets: checked even without rope
    const forward = [w(c.B * c.S * c.dIn, 10), c.B, c.S, cache, mask, mask ? Float64Array.of(0, 0, len, len) : null, new Float32Array(c.B * c.S * dOut), offsets];
    return { params, weights, forward, need: { x: c.B * c.S * c.dIn, y: c.B * c.S * dOut }, label: JSON.stringify(c) };
  });

  it('MultiHeadAttention: valid raw calls run, sync and async', async () => {
    for (const { params, weights, forward, label } of fc.sample(layerCall, { numRuns: Math.min(FUZZ_RUNS, 100) })) {
      const layer = new (MHA())(params, ...weights);
      expect(layer.forward(...forward), label).toBeUndefined();
      if (forward[3]) (forward[3] as { truncate(n: number): void }).truncate(0);
      const y = await layer.forwardAsync(...forward.slice(0, 6), forward[7]);
      expect(y, label).toEqual(forward[6]);
    }
  });

  it('MultiHeadAttention: x or y one element short, or hostile arguments, throw cleanly', () => {
    fc.assert(fc.property(layerCall, fc.array(fc.tuple(fc.integer({ min: 0, max: 7 }), hostileValue()), { minLength: 1, maxLength: 3 }), fc.boolean(),
      ({ params, weights, forward, need }, swaps, shorten) => {
        const layer = new (MHA())(params, ...weights);
        if (shorten) {
          cleanError(() => layer.forward((forward[0] as Float32Array).subarray(0, need.x - 1), ...forward.slice(1)), 'RangeError');
          cleanError(() => layer.forward(...forward.slice(0, 6), (forward[6] as Float32Array).subarray(0, need.y - 1), forward[7]), 'RangeError');
          cleanError(() => layer.forward(...forward.slice(0, 7), (forward[7] as Int32Array).subarray(1)), 'RangeError');
        }
        const bad = [...forward];
        for (const [i, value] of swaps) bad[i] = value;
        try {
          layer.forward(...bad);
        } catch (err) {
          expect(['TypeError', 'RangeError'], String(err)).toContain((err as Error).constructor.name);
        }
      }), { numRuns: FUZZ_RUNS });
  });

  it('MultiHeadAttention: constructor params and weights are checked; a weight detached later is an error, not a read', () => {
    const [{ params, weights, forward }] = fc.sample(layerCall, { numRuns: 1, seed: 3 });
    fc.assert(fc.property(fc.integer({ min: 0, max: 8 }), hostileValue(), fc.integer({ min: 0, max: 6 }), fc.constantFrom(-1, 0, 0.5, NaN, 2 ** 53, 1e300),
      (slot, bad, param, value) => {
        const args: unknown[] = [params, ...weights];
        args[slot] = bad;
        try {
          new (MHA())(...args);
        } catch (err) {
          expect(['TypeError', 'RangeError'], String(err)).toContain((err as Error).constructor.name);
        }
        const p = Float64Array.from(params);
        p[param] = value;
        if (param < 5) cleanError(() => new (MHA())(p, ...weights), 'RangeError');
      }), { numRuns: FUZZ_RUNS });
    const own = weights.map((w) => (w ? Float32Array.from(w) : null));
    const layer = new (MHA())(params, ...own);
    structuredClone(own[0]!.buffer, { transfer: [own[0]!.buffer] });
    cleanError(() => layer.forward(...forward));
  });
});

describe.skipIf(!raw)('raw Decoder and DecoderState (the model step of lib/native/decoder.ts)', () => {
  type Ctor = new (...a: unknown[]) => Record<string, (...a: unknown[]) => unknown> & { length: number };
  const Decoder = () => addon.Decoder as unknown as Ctor;
  const State = () => addon.DecoderState as unknown as Ctor;
  // A 1-layer GPT-2-style decoder in wire.decoder order: vocab 11, width 8, 2 heads over 1 kv head of 4,
  // ffn 6, 16 learned positions, LayerNorm, GELU, tied head.
  const params = () => Float64Array.of(11, 8, 1, 2, 1, 4, 6, 16, 0, 1e-5, 0, 0, 0, 0.5, 0, 1);
  const weights = () => [sharedFloat32(randomArray(88, 1)), sharedFloat32(randomArray(128, 2)),
    sharedFloat32(randomArray(8, 3)), sharedFloat32(randomArray(8, 4)), sharedFloat32(randomArray(128, 5)), sharedFloat32(randomArray(16, 6)),
    sharedFloat32(randomArray(64, 7)), sharedFloat32(randomArray(8, 8)), sharedFloat32(randomArray(8, 9)), sharedFloat32(randomArray(8, 10)),
    sharedFloat32(randomArray(48, 11)), sharedFloat32(randomArray(6, 12)), sharedFloat32(randomArray(48, 13)), sharedFloat32(randomArray(8, 14)),
    sharedFloat32(randomArray(8, 15)), sharedFloat32(randomArray(8, 16)), null, null];
  const logits = (n: number) => new Float32Array(new SharedArrayBuffer(n * 11 * 4));

  it('wire.decoder names the fields in the order these params use', () => {
    expect(addon.wire.decoder).toEqual(['vocab', 'width', 'layers', 'numHeads', 'numKVHeads', 'headDim', 'ffn', 'maxPositions', 'norm',
      'eps', 'mlp', 'rotaryDim', 'window', 'scale', 'dtype', 'tied']);
  });

  it('valid steps run, sync and async, with the same logits; the length advances', async () => {
    const decoder = new (Decoder())(params(), weights());
    const a = new (State())(decoder, 2, 8, null), b = new (State())(decoder, 2, 8, Int32Array.of(1, 0));
    const sync = logits(2), async = logits(2);
    a.step(Int32Array.of(1, 2, 3, 4), 2, sync, false);
    await a.stepAsync(Int32Array.of(5, 6), 1, async, false);
    expect(a.length).toBe(3);
    a.truncate(2);
    a.step(Int32Array.of(5, 6), 1, sync, false);
    expect(sync).toEqual(async);
    expect(sync.every(Number.isFinite)).toBe(true);
    b.step(Int32Array.of(0, 2, 3, 4), 2, logits(4), true);
    a.dispose();
    b.dispose();
    // Half-precision caches (kvDtype 1 F16, 2 BF16) run the same step.
    for (const kvDtype of [1, 2]) {
      const half = new (State())(decoder, 2, 8, null, kvDtype), out = logits(2);
      half.step(Int32Array.of(1, 2, 3, 4), 2, out, false);
      await half.stepAsync(Int32Array.of(5, 6), 1, out, false);
      expect(half.length).toBe(3);
      expect(out.every(Number.isFinite)).toBe(true);
      half.dispose();
    }
  });

  it('constructor params and weights: any hostile replacement is a clean error, never a crash', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 17 }), hostileValue(), fc.integer({ min: 0, max: 15 }), fc.constantFrom(-1, 0, 0.5, 3, NaN, 2 ** 53, 1e300),
      (slot, bad, param, value) => {
        // A bias slot takes null and any slot a longer array: the throw is not certain, its kind is.
        const list = weights();
        list[slot] = bad as Float32Array;
        try {
          new (Decoder())(params(), list);
        } catch (err) {
          expect(['TypeError', 'RangeError'], String(err)).toContain((err as Error).constructor.name);
        }
        const p = params();
        p[param] = value;
        try {
          new (Decoder())(p, weights());
        } catch (err) {
          expect(['TypeError', 'RangeError'], String(err)).toContain((err as Error).constructor.name);
        }
      }), { numRuns: FUZZ_RUNS });
    // Every weight one element short, or not SharedArrayBuffer-backed (a pool job reads them).
    for (let i = 0; i < 16; i++) {
      const short = weights(), plain = weights();
      short[i] = short[i]!.subarray(1);
      plain[i] = Float32Array.from(plain[i]!);
      cleanError(() => new (Decoder())(params(), short), 'RangeError');
      cleanError(() => new (Decoder())(params(), plain), 'TypeError');
    }
    cleanError(() => new (Decoder())(params(), weights().slice(1)), 'RangeError');
    cleanError(() => new (Decoder())(params(), 'weights'), 'TypeError');
  });

  it('state and step arguments: hostile ones are clean errors; bad ids, lengths and positions are refused before any work', async () => {
    const decoder = new (Decoder())(params(), weights());
    fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), hostileValue()), { minLength: 1, maxLength: 2 }), (swaps) => {
      const args: unknown[] = [decoder, 1, 4, null, 1];
      for (const [i, value] of swaps) args[i] = value;
      try {
        (new (State())(...args)).dispose();
      } catch (err) {
        expect(['TypeError', 'RangeError'], String(err)).toContain((err as Error).constructor.name);
      }
    }), { numRuns: FUZZ_RUNS });
    cleanError(() => new (State())({}, 1, 4, null), 'TypeError');
    cleanError(() => new (State())(decoder, 1, 4, Int32Array.of(4)), 'RangeError');
    cleanError(() => new (State())(decoder, 2 ** 40, 2 ** 40, null), 'RangeError');
    cleanError(() => new (State())(decoder, 2 ** 53 - 1, 4, null), 'RangeError');
    cleanError(() => new (State())(decoder, 2 ** 16 + 1, 4, null), 'RangeError');
    for (const kvDtype of [3, -1, 0.5]) cleanError(() => new (State())(decoder, 1, 4, null, kvDtype), 'RangeError');
    cleanError(() => new (State())(decoder, 1, 4, null, 'F16'), 'TypeError');
    const state = new (State())(decoder, 1, 4, null);
    fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), hostileValue()), { minLength: 1, maxLength: 3 }), (swaps) => {
      const args: unknown[] = [Int32Array.of(1), 1, logits(1), false, 0, null];
      for (const [i, value] of swaps) args[i] = value;
      try {
        state.step(...args);
      } catch (err) {
        expect(['TypeError', 'RangeError'], String(err)).toContain((err as Error).constructor.name);
      }
      state.truncate(0);
    }), { numRuns: FUZZ_RUNS });
    for (const id of [-1, 11, 2 ** 31 - 1]) cleanError(() => state.step(Int32Array.of(id), 1, logits(1), false), 'RangeError');
    cleanError(() => state.step(Int32Array.of(1, 2), 1, logits(1), false), 'RangeError');
    cleanError(() => state.step(Int32Array.of(1), 1, logits(1).subarray(1), false), 'RangeError');
    cleanError(() => state.step(Int32Array.of(1, 2, 3, 4, 5), 5, logits(5), true), 'RangeError');  // past maxLen 4
    cleanError(() => state.step(Int32Array.of(1), 1, logits(1), false, 1, new Float32Array(8)), 'RangeError');  // probsLayer 1 of 1 layer
    cleanError(() => state.step(Int32Array.of(1), 1, logits(1), false, 0, new Float32Array(1)), 'RangeError');
    expect(state.length).toBe(0);
    cleanError(() => state.stepAsync(Int32Array.of(1), 1, new Float32Array(11), false), 'TypeError');  // logits not shared: refused before queueing
    const pending = state.stepAsync(Int32Array.of(1), 1, logits(1), false);
    expect(() => state.step(Int32Array.of(1), 1, logits(1), false)).toThrow(/in use/);
    expect(() => state.dispose()).toThrow(/in use/);
    await pending;
    expect(state.length).toBe(1);
    cleanError(() => state.truncate(2), 'RangeError');
    state.dispose();
    expect(() => state.step(Int32Array.of(1), 1, logits(1), false)).toThrow(/disposed/);
    cleanError(() => (State() as unknown as { prototype: Record<string, (...a: unknown[]) => unknown> }).prototype.step.call({}, Int32Array.of(1), 1, logits(1), false), 'TypeError');
  });
});

it.skipIf(!raw)('every export of the raw binding is covered by this file', () => {
  const covered = ['info', 'setNumThreads', 'selectIsa', 'dot', 'matmul', 'attention', 'attentionAsync', '_vecExpsum',
    'KVCache', 'MultiHeadAttention', '_probePeak', '_probeBandwidth', 'wire', 'concatPresent', 'Decoder', 'DecoderState',
    // Fuzzed in their own files: test/rms-norm.test.ts, test/rope.test.ts, test/swiglu.test.ts.
    'rmsNorm', 'rope', 'silu', 'swiglu'];
  expect(Object.keys(addon).sort(), 'a new raw export needs fuzz cases here').toEqual([...covered].sort());
  // And every method and accessor of the exported classes.
  const coveredMethods: Record<string, string[]> = {
    KVCache: ['length', 'disposed', 'reset', 'truncate', 'read', 'dispose'],
    MultiHeadAttention: ['forward', 'forwardAsync'],
    Decoder: [],
    DecoderState: ['length', 'step', 'stepAsync', 'truncate', 'dispose'],
  };
  for (const [name, methods] of Object.entries(coveredMethods)) {
    const proto = (addon as unknown as Record<string, { prototype: object }>)[name].prototype;
    expect(Object.getOwnPropertyNames(proto).filter((m) => m !== 'constructor').sort(), `a new ${name} method needs fuzz cases here`).toEqual([...methods].sort());
  }
  // concatPresent (valid calls and size re-checks: test/present.test.ts): any hostile argument is a clean error.
  const present = addon.concatPresent as (...a: unknown[]) => unknown;
  const presentParams = Float64Array.of(1, 2, 3, 1, 4, 8, 4, 4);
  fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), hostileValue()), { minLength: 1, maxLength: 2 }), (swaps) => {
    const args: unknown[] = [new Float32Array(24), new Float32Array(8), Float64Array.from(presentParams)];
    for (const [i, value] of swaps) args[i] = value;
    try {
      present(...args);
    } catch (err) {
      expect(['TypeError', 'RangeError'], String(err)).toContain((err as Error).constructor.name);
    }
  }), { numRuns: FUZZ_RUNS });
  const peak = addon._probePeak as (...a: unknown[]) => unknown, bandwidth = addon._probeBandwidth as (...a: unknown[]) => unknown;
  // Hostile sizes are refused at once instead of running for minutes: threads past the CPU count
  // (time-sliced trials), more than 1 s per trial, more than 4 GiB to read.
  const started = Date.now();
  for (const bad of [...badSizes, 0, 4097, os.availableParallelism() + 1, 1e6]) cleanError(() => peak(bad, 0.01));
  for (const bad of ['1', NaN, 0, 1.5, 11, 3600, -1, Infinity]) cleanError(() => peak(1, bad));
  for (const bad of [...badSizes, 0, 2 ** 20 - 1, 2 ** 32 + 1, 2 ** 36 + 1, 2 ** 50]) cleanError(() => bandwidth(1, bad));
  expect(Date.now() - started, 'rejecting hostile probe arguments takes no time').toBeLessThan(1000);
  expect(Object.isFrozen(addon.wire)).toBe(true);
  expect(addon.wire.attention).toContain('qkMode');
});
