// attention() / attentionAsync() on both backends against the float64 reference (helpers/attention-ref.ts):
// every ONNX variant in 4-D and 3-D layouts, the seeds' worked example, the invariants, argument
// errors, and fast-check properties (random valid calls match the reference and native == JS;
// random invalid ones give a clean TypeError/RangeError).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AttentionOptions, AttentionResult } from '../dist/index.js';
import { api, forEachBackend, nativeAvailable } from './helpers/backends';
import { attentionRef, boolMask, floatMask, makeInputs, values, type Inputs, type RefOptions, type Shape } from './helpers/attention-ref';
import { cleanError, detachedFloat32, FUZZ_RUNS, hostileValue, publicError, type ErrorKind } from './helpers/hostile';
import { expectClose, firstMismatch } from './helpers/oracle';

// Inputs in [-1, 1): scores are float32 dot products of at most 256 terms and y a convex mix of
// values. Worst errors against the float64 reference, measured over nine runs of the random
// properties and every fixed case on each kernel set (avx512, avx2, scalar; NODE_ATTENTION_ERROR_LOG,
// helpers/oracle.ts): native 5.3e-7 absolute where |expected| < 1 and 4.8e-7 relative where
// |expected| >= 1 (scores of mode 0-2), JS 4.1e-7 / 1.2e-7; native vs JS 6.0e-7 / 4.3e-7.
// Bounds ~4x the worst; 'the tolerance rejects a scale 10% off' proves they bite.
const ATOL = 2e-6, RTOL = 2e-6;

const shape = (s: Partial<Shape>): Shape => ({ B: 2, Hq: 4, Hkv: 2, Sq: 3, Skv: 5, D: 8, Dv: 8, past: 0, ...s });
const total = (s: Shape) => s.past + s.Skv;

function run(inputs: Inputs, extra: RefOptions = {}): { result: AttentionResult; opts: RefOptions } {
  const opts = { ...inputs.opts, ...extra };
  return { result: api.attention(inputs.q, inputs.k, inputs.v, opts as AttentionOptions), opts };
}

/** Runs attention and checks y, present and qkMatmulOutput against the reference. */
function expectMatchesRef(inputs: Inputs, extra: RefOptions = {}, label = ''): AttentionResult {
  const { result, opts } = run(inputs, extra);
  const ref = attentionRef(inputs.q, inputs.k, inputs.v, opts);
  expect(result.y.dims, `${label} y dims`).toEqual(ref.yDims);
  expectClose(result.y.data, ref.y, ATOL, RTOL, `${label} y`);
  if (opts.pastKey) {
    const [B, Hkv, , D] = opts.pastKey.dims, T = ref.presentKey.length / (B * Hkv * D);
    expect(result.presentKey!.dims).toEqual([B, Hkv, T, D]);
    expect(result.presentValue!.dims).toEqual([B, Hkv, T, opts.pastValue!.dims[3]]);
    expect(Array.from(result.presentKey!.data)).toEqual(Array.from(ref.presentKey));
    expect(Array.from(result.presentValue!.data)).toEqual(Array.from(ref.presentValue));
  } else {
    expect(result.presentKey).toBeUndefined();
    expect(result.presentValue).toBeUndefined();
  }
  if (opts.qkMatmulOutputMode === undefined) {
    expect(result.qkMatmulOutput).toBeUndefined();
  } else {
    const [B, Hq] = inputs.q.dims.length === 4 ? inputs.q.dims : [inputs.q.dims[0], opts.qNumHeads!];
    expect(result.qkMatmulOutput!.dims[0]).toBe(B);
    expect(result.qkMatmulOutput!.dims[1]).toBe(Hq);
    expectClose(result.qkMatmulOutput!.data, ref.qk, ATOL, RTOL, `${label} qk mode ${opts.qkMatmulOutputMode}`);
  }
  return result;
}

interface Variant {
  shape: Shape;
  opts?: (s: Shape) => RefOptions;
}

const variants: Record<string, Variant> = {
  'MHA': { shape: shape({ Hq: 4, Hkv: 4, Sq: 5, Skv: 7 }) },
  'GQA 32/8': { shape: shape({ B: 1, Hq: 32, Hkv: 8, Sq: 3, Skv: 6, D: 16, Dv: 16 }) },
  'MQA 6/1': { shape: shape({ Hq: 6, Hkv: 1, Sq: 4 }) },
  'Dv != D': { shape: shape({ D: 8, Dv: 13 }) },
  'single query, single key': { shape: shape({ Sq: 1, Skv: 1 }) },
  'custom scale': { shape: shape({}), opts: () => ({ scale: 0.3 }) },
  'causal, Sq == Skv': { shape: shape({ Sq: 6, Skv: 6 }), opts: () => ({ isCausal: true }) },
  'causal, Skv > Sq (top-left)': { shape: shape({ Sq: 4, Skv: 9 }), opts: () => ({ isCausal: true }) },
  'causal, Sq > Skv (top-left)': { shape: shape({ Sq: 9, Skv: 4 }), opts: () => ({ isCausal: true }) },
  'causal with past': { shape: shape({ Sq: 3, Skv: 3, past: 5 }), opts: () => ({ isCausal: true }) },
  'causal decode with a long past, Dv != D': { shape: shape({ Sq: 1, Skv: 1, past: 70, Dv: 6 }), opts: () => ({ isCausal: true }) },
  'past without causal, with a float mask': { shape: shape({ past: 4 }), opts: (s) => ({ attnMask: floatMask([s.Sq, total(s)], 3) }) },
  'softcap with a float mask': { shape: shape({}), opts: (s) => ({ softcap: 1.5, scale: 2, attnMask: floatMask([s.Sq, total(s)], 4) }) },
  'nonpad int32': { shape: shape({ Skv: 7 }), opts: () => ({ nonpadKvSeqlen: Int32Array.of(3, 7) }) },
  'nonpad int64, causal (offset nonpad - Sq)': { shape: shape({ Sq: 2, Skv: 7 }), opts: () => ({ isCausal: true, nonpadKvSeqlen: BigInt64Array.of(5n, 2n) }) },
  'nonpad below Sq, causal (rows with no key)': { shape: shape({ Sq: 4, Skv: 6 }), opts: () => ({ isCausal: true, nonpadKvSeqlen: Int32Array.of(2, 6) }) },
  'nonpad 0 (the whole batch entry masked)': { shape: shape({}), opts: () => ({ nonpadKvSeqlen: Int32Array.of(0, 4) }) },
  'causal + bool mask + nonpad composed': { shape: shape({ Sq: 3, Skv: 6 }), opts: () => ({ isCausal: true, attnMask: boolMask([2, 1, 3, 6], 5), nonpadKvSeqlen: BigInt64Array.of(6n, 4n) }) },
  'fully masked rows from a bool mask': {
    shape: shape({ Sq: 3, Skv: 4 }),
    opts: () => ({ attnMask: { data: Uint8Array.of(1, 0, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1), dims: [3, 4] } }),
  },
  'fully masked rows from a -inf float mask, with softcap': {
    shape: shape({ Sq: 2, Skv: 3 }),
    opts: () => ({ softcap: 0.5, attnMask: { data: Float32Array.of(0, -Infinity, 1, -Infinity, -Infinity, -Infinity), dims: [2, 3] } }),
  },
};
// Tile and row-block edges of both kernels: key counts around 64 and query counts around 4.
for (const [Sq, Skv] of [[1, 63], [4, 64], [5, 65], [33, 129], [3, 200]]) {
  variants[`Sq ${Sq}, Skv ${Skv}, causal`] = { shape: shape({ B: 1, Sq, Skv, D: 16, Dv: 16 }), opts: () => ({ isCausal: true }) };
}

// Every broadcastable mask rank, with 1-dims, and the opset-24 short last dim (padded with -inf/false).
const maskDims: Record<string, (s: Shape) => number[]> = {
  '[total]': (s) => [total(s)],
  '[Sq, total]': (s) => [s.Sq, total(s)],
  '[1, total]': (s) => [1, total(s)],
  '[Hq, Sq, total]': (s) => [s.Hq, s.Sq, total(s)],
  '[Hq, 1, total]': (s) => [s.Hq, 1, total(s)],
  '[1, Sq, total]': (s) => [1, s.Sq, total(s)],
  '[B, Hq, Sq, total]': (s) => [s.B, s.Hq, s.Sq, total(s)],
  '[B, 1, Sq, total]': (s) => [s.B, 1, s.Sq, total(s)],
  '[1, Hq, 1, total]': (s) => [1, s.Hq, 1, total(s)],
  '[B, 1, 1, total]': (s) => [s.B, 1, 1, total(s)],
  'short [Sq, total - 2]': (s) => [s.Sq, total(s) - 2],
  'short [B, Hq, Sq, total - 3]': (s) => [s.B, s.Hq, s.Sq, total(s) - 3],
  'short [B, 1, Sq, 1]': (s) => [s.B, 1, s.Sq, 1],
};
for (const [name, dims] of Object.entries(maskDims)) {
  const s = shape({ Sq: 3, Skv: 4, past: 2 });
  variants[`bool mask ${name}`] = { shape: s, opts: (x) => ({ attnMask: boolMask(dims(x), 6), isCausal: name.startsWith('[B') }) };
  variants[`float mask ${name}`] = { shape: s, opts: (x) => ({ attnMask: floatMask(dims(x), 7) }) };
}
// All four qk outputs, with every stage present: softcap, mask, causal, past.
for (const mode of [0, 1, 2, 3]) {
  variants[`qkMatmulOutputMode ${mode}`] = {
    shape: shape({ Sq: 3, Skv: 3, past: 3, Dv: 5 }),
    opts: (s) => ({ qkMatmulOutputMode: mode, softcap: 0.8, isCausal: true, attnMask: floatMask([s.B, 1, s.Sq, total(s)], 8) }),
  };
  variants[`qkMatmulOutputMode ${mode}, fully masked rows`] = {
    shape: shape({ Sq: 2, Skv: 3 }),
    opts: () => ({ qkMatmulOutputMode: mode, nonpadKvSeqlen: Int32Array.of(0, 3), attnMask: boolMask([2, 3], 9) }),
  };
}

forEachBackend('attention variants', () => {
  for (const rank of [4, 3] as const) {
    describe(`${rank}-D`, () => {
      it.each(Object.entries(variants))('%s', (name, variant) => {
        const inputs = makeInputs(variant.shape, rank, name.length);
        expectMatchesRef(inputs, variant.opts?.(variant.shape), name);
      });
    });
  }

  it('head sizes 1..256, odd ones included (GQA 4/2, 4-D and 3-D)', () => {
    for (const D of [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 255, 256]) {
      for (const rank of [4, 3] as const) {
        const s = shape({ B: 1, Sq: 3, Skv: 5, D, Dv: D === 1 ? 3 : D });
        expectMatchesRef(makeInputs(s, rank, D), { isCausal: D % 2 === 1 }, `D ${D} rank ${rank}`);
      }
    }
  });

  it('the tolerance rejects a scale 10% off and a softcap 10% off', () => {
    // Deliberately wrong results must fail the check every variant above passes.
    for (const [name, wrong] of [['scale', { scale: 1.1 / Math.sqrt(8) }], ['softcap', { softcap: 1.65, scale: 2 }]] as const) {
      const s = shape({ Sq: 5, Skv: 7 });
      const inputs = makeInputs(s, 4, 40);
      const right = name === 'scale' ? {} : { softcap: 1.5, scale: 2 };
      const ref = attentionRef(inputs.q, inputs.k, inputs.v, { ...inputs.opts, ...right });
      expectClose(run(inputs, right).result.y.data, ref.y, ATOL, RTOL, `${name} right`);
      expect(firstMismatch(run(inputs, wrong).result.y.data, ref.y, ATOL, RTOL), `${name} 10% off passes`).toBeGreaterThanOrEqual(0);
    }
  });

  it('keeps huge logits (+-1e4) exact: softmax subtracts the row max', () => {
    // Integer inputs and scale 1 make every score an exactly representable integer up to 1e4.
    const D = 4, T = 5;
    const q = { data: Float32Array.of(100, 0, 0, 0, -100, 0, 0, 0, 0, 50, 0, 0), dims: [1, 1, 3, D] };
    const k = { data: Float32Array.of(100, 0, 0, 0, -100, 0, 0, 0, 99, 0, 0, 0, 0, 100, 0, 0, 0, -100, 0, 0), dims: [1, 1, T, D] };
    const v = { data: values(T * 3, 12), dims: [1, 1, T, 3] };
    const r = expectMatchesRef({ q, k, v, opts: {} }, { scale: 1, qkMatmulOutputMode: 3 }, 'huge logits');
    const p = r.qkMatmulOutput!.data;
    // Row 0 scores [1e4, -1e4, 9900, 0, 0]: key 0 takes everything but e^-100.
    expect(p[0]).toBeCloseTo(1, 6);
    expect(p[2]).toBeGreaterThanOrEqual(0);
    expect(p[2]).toBeLessThan(1e-40);
    expectClose(r.y.data.subarray(0, 3), v.data.subarray(0, 3), 0, 1e-6, 'row 0 = v_0');
    // Row 1 scores [-1e4, 1e4, -9900, 0, 0]: key 1 alone.
    expect(p[T + 1]).toBeCloseTo(1, 6);
    expectClose(r.y.data.subarray(3, 6), v.data.subarray(3, 6), 0, 1e-6, 'row 1 = v_1');
    // Row 2 scores [0, 0, 0, 5000, -5000]: key 3 alone.
    expect(p[2 * T + 3]).toBeCloseTo(1, 6);
    expectClose(r.y.data.subarray(6, 9), v.data.subarray(9, 12), 0, 1e-6, 'row 2 = v_3');
  });

  it('computes the seeds\' "The cat sat" example with its true values (scale 1)', () => {
    // Tokens The [1,0,1], cat [0,1,1], sat [1,1,0]; Q = X W_Q, K = X W_K, V = X W_V.
    const X = [[1, 0, 1], [0, 1, 1], [1, 1, 0]];
    const WQ = [[1, 0], [0, 1], [1, 1]], WK = [[0, 1], [1, 0], [1, 1]], WV = [[1, 1], [0, 1], [1, 0]];
    const project = (W: number[][]) => Float32Array.from(X.flatMap((x) => [0, 1].map((c) => x[0] * W[0][c] + x[1] * W[1][c] + x[2] * W[2][c])));
    const [Q, K, V] = [project(WQ), project(WK), project(WV)];
    expect(Array.from(K.subarray(4, 6))).toEqual([1, 1]); // K_sat = [1,0]+[0,1]: the seed's [0, 1] is the slip
    const r = api.attention({ data: Q, dims: [1, 1, 3, 2] }, { data: K, dims: [1, 1, 3, 2] }, { data: V, dims: [1, 1, 3, 2] },
      { scale: 1, qkMatmulOutputMode: 0 });
    // Scores for "The" are [4, 5, 3], not the published [4, 5, 1].
    expect(Array.from(r.qkMatmulOutput!.data.subarray(0, 3))).toEqual([4, 5, 3]);
    const e = [Math.exp(-1), 1, Math.exp(-2)], sum = e[0] + e[1] + e[2];
    const w = e.map((x) => x / sum); // [0.2447, 0.6652, 0.0900], not [0.27, 0.72, 0.01]
    const context = [2 * w[0] + w[1] + w[2], w[0] + w[1] + 2 * w[2]]; // V_The [2,1], V_cat [1,1], V_sat [1,2]
    expect(context[0]).toBeCloseTo(1.244728, 6);
    expect(context[1]).toBeCloseTo(1.090031, 6);
    expectClose(r.y.data.subarray(0, 2), context, 1e-6, 1e-6, '"The" context');
  });
});

/** Tokens [from, to) of a 4-D [B, H, S, d] or 3-D [B, S, H*d] tensor. */
function tokens(t: { data: Float32Array; dims: number[] }, from: number, to: number) {
  const rank = t.dims.length, [B] = t.dims;
  const outer = rank === 4 ? B * t.dims[1] : B, S = rank === 4 ? t.dims[2] : t.dims[1], row = t.dims[rank - 1];
  const data = new Float32Array(outer * (to - from) * row);
  for (let o = 0; o < outer; o++) data.set(t.data.subarray((o * S + from) * row, (o * S + to) * row), o * (to - from) * row);
  return { data, dims: rank === 4 ? [B, t.dims[1], to - from, row] : [B, to - from, row] };
}

/** A 3-D [B, S, H*d] tensor as 4-D [B, H, S, d] (the layout of pastKey/pastValue). */
function heads4(t: { data: Float32Array; dims: number[] }, H: number) {
  const [B, S, hidden] = t.dims, d = hidden / H, data = new Float32Array(t.data.length);
  for (let b = 0; b < B; b++) for (let s = 0; s < S; s++) for (let h = 0; h < H; h++) {
    data.set(t.data.subarray(((b * S + s) * H + h) * d, ((b * S + s) * H + h + 1) * d), ((b * H + h) * S + s) * d);
  }
  return { data, dims: [B, H, S, d] };
}

forEachBackend('attention invariants', (backend) => {
  for (const rank of [4, 3] as const) {
    it(`${rank}-D: decoding token by token with pastKey/pastValue equals one causal pass`, () => {
      const s = shape({ B: 2, Hq: 4, Hkv: 2, Sq: 9, Skv: 9, D: 8, Dv: 6 });
      const { q, k, v, opts } = makeInputs(s, rank, 21);
      const full = api.attention(q, k, v, { ...opts, isCausal: true } as AttentionOptions);
      const row = (t: { data: Float32Array; dims: number[] }, i: number) => tokens(t, i, i + 1).data;
      const as4 = (t: { data: Float32Array; dims: number[] }) => (rank === 4 ? t : heads4(t, s.Hkv));
      // A two-token prefill without a past, then one token at a time.
      const prefill = api.attention(tokens(q, 0, 2), tokens(k, 0, 2), tokens(v, 0, 2), { ...opts, isCausal: true } as AttentionOptions);
      expectClose(prefill.y.data, tokens(full.y, 0, 2).data, ATOL, RTOL, 'prefill');
      let pastKey = as4(tokens(k, 0, 2)), pastValue = as4(tokens(v, 0, 2));
      for (let t = 2; t < s.Sq; t++) {
        const step = api.attention(tokens(q, t, t + 1), tokens(k, t, t + 1), tokens(v, t, t + 1),
          { ...opts, isCausal: true, pastKey, pastValue } as AttentionOptions);
        expectClose(step.y.data, row(full.y, t), ATOL, RTOL, `token ${t}`);
        pastKey = step.presentKey!;
        pastValue = step.presentValue!;
      }
      expect(Array.from(pastKey.data)).toEqual(Array.from(as4(k).data));
      expect(Array.from(pastValue.data)).toEqual(Array.from(as4(v).data));
    });
  }

  it('GQA equals MHA over kv heads repeated to every query head of their group', () => {
    const s = shape({ B: 2, Hq: 6, Hkv: 2, Sq: 5, Skv: 7, D: 8, Dv: 5 });
    const { q, k, v } = makeInputs(s, 4, 22);
    const repeat = (t: { data: Float32Array; dims: number[] }) => {
      const [B, H, S, d] = t.dims, group = s.Hq / H, data = new Float32Array(B * s.Hq * S * d);
      for (let b = 0; b < B; b++) for (let h = 0; h < s.Hq; h++) {
        data.set(t.data.subarray((b * H + Math.floor(h / group)) * S * d, (b * H + Math.floor(h / group) + 1) * S * d), (b * s.Hq + h) * S * d);
      }
      return { data, dims: [B, s.Hq, S, d] };
    };
    const opts = { isCausal: true, attnMask: floatMask([s.Sq, s.Skv], 23) };
    const gqa = api.attention(q, k, v, opts);
    const mha = api.attention(q, repeat(k), repeat(v), { ...opts, kvNumHeads: s.Hq, qNumHeads: s.Hq });
    // Worst measured 1.2e-7 (native; JS bit-identical): bound ~4x.
    expectClose(gqa.y.data, mha.y.data, 5e-7, 0, 'GQA vs MHA');
  });

  it('causal row t does not change when later keys and values change', () => {
    const s = shape({ B: 1, Hq: 4, Hkv: 2, Sq: 70, Skv: 70, D: 16, Dv: 16 });
    const { q, k, v } = makeInputs(s, 4, 24);
    const before = api.attention(q, k, v, { isCausal: true });
    const t = 40, k2 = { ...k, data: k.data.slice() }, v2 = { ...v, data: v.data.slice() };
    for (let h = 0; h < s.Hkv; h++) {
      for (let j = t + 1; j < s.Skv; j++) for (let d = 0; d < s.D; d++) {
        k2.data[(h * s.Skv + j) * s.D + d] = 50;
        v2.data[(h * s.Skv + j) * s.D + d] = -1e3;
      }
    }
    const after = api.attention(q, k2, v2, { isCausal: true });
    for (let h = 0; h < s.Hq; h++) {
      const rows = (r: AttentionResult) => Array.from(r.y.data.subarray((h * s.Sq) * s.Dv, (h * s.Sq + t + 1) * s.Dv));
      expect(rows(after)).toEqual(rows(before));
    }
  });

  it('reads subarray inputs (non-zero byteOffset) like copies, and never mutates its inputs', () => {
    const s = shape({ past: 3, Dv: 5 });
    const base = makeInputs(s, 4, 25);
    const opts = { ...base.opts, isCausal: true, attnMask: boolMask([s.Sq, total(s)], 26), qkMatmulOutputMode: 3 } as AttentionOptions;
    const shifted = <T extends Float32Array | Uint8Array>(a: T): T => {
      const big = new (a.constructor as new (n: number) => T)(a.length + 7);
      big.set(a, 5);
      return big.subarray(5, 5 + a.length) as T;
    };
    const subOpts = {
      ...opts, attnMask: { ...opts.attnMask!, data: shifted(opts.attnMask!.data) },
      pastKey: { ...opts.pastKey!, data: shifted(opts.pastKey!.data) }, pastValue: { ...opts.pastValue!, data: shifted(opts.pastValue!.data) },
    };
    const snapshot = [base.q.data, base.k.data, base.v.data, opts.pastKey!.data, opts.pastValue!.data, opts.attnMask!.data].map((a) => Array.from(a));
    const plain = api.attention(base.q, base.k, base.v, opts);
    const sub = api.attention({ ...base.q, data: shifted(base.q.data) }, { ...base.k, data: shifted(base.k.data) }, { ...base.v, data: shifted(base.v.data) }, subOpts);
    for (const key of ['y', 'presentKey', 'presentValue', 'qkMatmulOutput'] as const) {
      expect(Array.from(sub[key]!.data), key).toEqual(Array.from(plain[key]!.data));
    }
    const after = [base.q.data, base.k.data, base.v.data, opts.pastKey!.data, opts.pastValue!.data, opts.attnMask!.data].map((a) => Array.from(a));
    expect(after).toEqual(snapshot);
  });

  it('reads each tensor and option once: getters cannot change what was validated', () => {
    const { q, k, v } = makeInputs(shape({}), 4, 32);
    const expected = api.attention(q, k, v, { isCausal: true });
    // The later values would change the result, so a second read could not go unnoticed.
    expect(Array.from(api.attention(q, k, v, { isCausal: false }).y.data)).not.toEqual(Array.from(expected.y.data));
    const flip = <T>(first: T, later: T) => { let n = 0; return () => (n++ === 0 ? first : later); };
    const qData = flip(q.data, new Float32Array(1)), kDims = flip(k.dims, [1, 1, 1, 1]);
    // A second read would see false (valid, and a different result), so only reading once passes.
    const causal = flip<unknown>(true, false);
    const result = api.attention(
      { get data() { return qData(); }, dims: q.dims },
      { data: k.data, get dims() { return kDims(); } },
      v,
      { get isCausal() { return causal(); } } as AttentionOptions);
    expect(Array.from(result.y.data)).toEqual(Array.from(expected.y.data));
  });

  it('attentionAsync resolves to what attention returns', async () => {
    const s = shape({ B: 2, Hq: 8, Hkv: 2, Sq: 17, Skv: 9, past: 4, Dv: 12 });
    const { q, k, v, opts } = makeInputs(s, 3, 27);
    const all = { ...opts, isCausal: true, softcap: 2, qkMatmulOutputMode: 2, attnMask: floatMask([s.B, 1, s.Sq, total(s)], 28) } as AttentionOptions;
    const sync = api.attention(q, k, v, all);
    const async = await api.attentionAsync(q, k, v, all);
    expect(async.y.dims).toEqual(sync.y.dims);
    for (const key of ['y', 'presentKey', 'presentValue', 'qkMatmulOutput'] as const) {
      expect(Array.from(async[key]!.data), key).toEqual(Array.from(sync[key]!.data));
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Argument errors: the same TypeError/RangeError, naming the argument, on both backends.

type Args = [unknown, unknown, unknown, unknown?];
const base = () => makeInputs(shape({}), 4, 30); // q [2,4,3,8], k [2,2,5,8], v [2,2,5,8]
const base3 = () => makeInputs(shape({}), 3, 31); // q [2,3,32], k [2,5,16], v [2,5,16]
const f32 = (dims: number[]) => ({ data: new Float32Array(dims.reduce((p, d) => p * d, 1)), dims });
function withOpts(extra: Record<string, unknown>, inputs = base()): Args {
  return [inputs.q, inputs.k, inputs.v, { ...inputs.opts, ...extra }];
}

const errorCases: [string, () => Args, ErrorKind, string, RegExp][] = [
  ['q is not a tensor', () => [null, base().k, base().v], 'TypeError', 'q', /a Tensor \{data: Float32Array, dims\} for q but received null/],
  ['q.data is a Float64Array', () => [{ data: new Float64Array(192), dims: [2, 4, 3, 8] }, base().k, base().v], 'TypeError', 'q.data', /Float32Array for q\.data but received Float64Array of length 192/],
  ['q.data has the wrong length', () => [{ data: new Float32Array(10), dims: [2, 4, 3, 8] }, base().k, base().v], 'RangeError', 'q', /data of length 192 .* but received data of length 10/],
  ['q is 2-D', () => [f32([4, 8]), base().k, base().v], 'RangeError', 'q', /4-D dims \[B, H, S, D\] or 3-D dims \[B, S, H\*D\] for q but received dims \[4, 8\]/],
  ['k has another rank', () => [base().q, f32([2, 5, 16]), base().v], 'RangeError', 'k', /4-D dims like q for k but received dims \[2, 5, 16\]/],
  ['k head size differs', () => [base().q, f32([2, 2, 5, 6]), base().v], 'RangeError', 'k', /dims \[2, Hkv, Skv, 8\] .*for k but received dims \[2, 2, 5, 6\]/],
  ['k batch differs', () => [base().q, f32([3, 2, 5, 8]), base().v], 'RangeError', 'k', /for k but received dims \[3, 2, 5, 8\]/],
  ['v length differs from k', () => [base().q, base().k, f32([2, 2, 4, 8])], 'RangeError', 'v', /dims \[2, 2, 5, Dv\] .*for v but received dims \[2, 2, 4, 8\]/],
  ['kv heads do not divide query heads', () => [f32([2, 6, 3, 8]), f32([2, 4, 5, 8]), f32([2, 4, 5, 8])], 'RangeError', 'k', /divides the 6 query heads for k but received 4 kv heads/],
  ['3-D without qNumHeads', () => withOpts({ qNumHeads: undefined }, base3()), 'TypeError', 'opts.qNumHeads', /required for 3-D q, k, v\) for opts\.qNumHeads but received undefined/],
  ['3-D without kvNumHeads', () => withOpts({ kvNumHeads: undefined }, base3()), 'TypeError', 'opts.kvNumHeads', /for opts\.kvNumHeads but received undefined/],
  ['3-D q hidden not divisible', () => withOpts({ qNumHeads: 5 }, base3()), 'RangeError', 'q', /divisible by qNumHeads = 5 for q but received dims \[2, 3, 32\]/],
  ['3-D k hidden mismatch', () => withOpts({ kvNumHeads: 1 }, base3()), 'RangeError', 'k', /dims \[2, Skv, 8\] .*for k but received dims \[2, 5, 16\]/],
  ['3-D kv heads do not divide', () => withOpts({ qNumHeads: 2, kvNumHeads: 4 }, makeInputs(shape({ Hq: 2, Hkv: 4 }), 3)), 'RangeError', 'opts.kvNumHeads', /divides the 2 query heads/],
  ['qNumHeads contradicts 4-D q', () => withOpts({ qNumHeads: 5 }), 'RangeError', 'opts.qNumHeads', /4 \(dim 1 of q\) or undefined for opts\.qNumHeads but received 5/],
  ['kvNumHeads is 1.5', () => withOpts({ kvNumHeads: 1.5 }), 'RangeError', 'opts.kvNumHeads', /a positive integer for opts\.kvNumHeads but received 1\.5/],
  ['qNumHeads is a string', () => withOpts({ qNumHeads: '4' }), 'TypeError', 'opts.qNumHeads', /a positive integer for opts\.qNumHeads but received string "4"/],
  ['opts is not an object', () => [base().q, base().k, base().v, 5], 'TypeError', 'opts', /an options object for opts but received number 5/],
  ['an unknown option name', () => withOpts({ causal: true }), 'RangeError', 'opts', /only the options attnMask, .* for opts but received unknown option "causal"/],
  ['pastKey without pastValue', () => withOpts({ pastKey: f32([2, 2, 3, 8]) }), 'TypeError', 'opts.pastValue', /a Tensor \(it comes with opts\.pastKey\) for opts\.pastValue but received undefined/],
  ['nonpadKvSeqlen together with a past (ONNX forbids the combination)', () => withOpts({ pastKey: f32([2, 2, 3, 8]), pastValue: f32([2, 2, 3, 8]), nonpadKvSeqlen: Int32Array.of(8, 8) }),
    'RangeError', 'opts.nonpadKvSeqlen', /undefined when opts\.pastKey\/pastValue are given \(ONNX Attention does not combine them\) for opts\.nonpadKvSeqlen but received both/],
  ['pastValue without pastKey', () => withOpts({ pastValue: f32([2, 2, 3, 8]) }), 'TypeError', 'opts.pastKey', /for opts\.pastKey but received undefined/],
  ['pastKey is 3-D', () => withOpts({ pastKey: f32([2, 3, 16]), pastValue: f32([2, 2, 3, 8]) }), 'RangeError', 'opts.pastKey', /4-D dims \[2, 2, past, 8\] for opts\.pastKey but received dims \[2, 3, 16\]/],
  ['pastKey head size differs', () => withOpts({ pastKey: f32([2, 2, 3, 7]), pastValue: f32([2, 2, 3, 8]) }), 'RangeError', 'opts.pastKey', /dims \[2, 2, past, 8\] for opts\.pastKey but received dims \[2, 2, 3, 7\]/],
  ['pastValue length differs', () => withOpts({ pastKey: f32([2, 2, 3, 8]), pastValue: f32([2, 2, 4, 8]) }), 'RangeError', 'opts.pastValue', /dims \[2, 2, 3, 8\] .*for opts\.pastValue but received dims \[2, 2, 4, 8\]/],
  ['attnMask is an Int8Array mask', () => withOpts({ attnMask: { data: new Int8Array(15), dims: [3, 5] } }), 'TypeError', 'opts.attnMask.data', /Float32Array \(added\) or Uint8Array \(boolean\) for opts\.attnMask\.data but received Int8Array/],
  ['attnMask is a bare array', () => withOpts({ attnMask: new Uint8Array(15) }), 'TypeError', 'opts.attnMask', /a mask \{data: Float32Array \| Uint8Array, dims\} for opts\.attnMask/],
  ['attnMask does not broadcast', () => withOpts({ attnMask: f32([2, 5]) }), 'RangeError', 'opts.attnMask', /broadcast to \[B, qNumHeads, Sq, total\] = \[2, 4, 3, 5\] \(last dim at most 5\) for opts\.attnMask but received dims \[2, 5\]/],
  ['attnMask last dim above total', () => withOpts({ attnMask: f32([3, 6]) }), 'RangeError', 'opts.attnMask', /last dim at most 5.* but received dims \[3, 6\]/],
  ['attnMask of rank 5', () => withOpts({ attnMask: f32([1, 2, 4, 3, 5]) }), 'RangeError', 'opts.attnMask', /dims of rank 1 to 4 .* but received dims \[1, 2, 4, 3, 5\]/],
  ['attnMask data length', () => withOpts({ attnMask: { data: new Uint8Array(14), dims: [3, 5] } }), 'RangeError', 'opts.attnMask', /data of length 15 .* but received data of length 14/],
  ['nonpadKvSeqlen is a plain array', () => withOpts({ nonpadKvSeqlen: [5, 5] }), 'TypeError', 'opts.nonpadKvSeqlen', /an Int32Array or BigInt64Array of length 2 for opts\.nonpadKvSeqlen but received Array\(2\)/],
  ['nonpadKvSeqlen is a Float32Array', () => withOpts({ nonpadKvSeqlen: new Float32Array(2) }), 'TypeError', 'opts.nonpadKvSeqlen', /but received Float32Array of length 2/],
  ['nonpadKvSeqlen length', () => withOpts({ nonpadKvSeqlen: Int32Array.of(5) }), 'RangeError', 'opts.nonpadKvSeqlen', /length 2 \(the batch size\) for opts\.nonpadKvSeqlen but received length 1/],
  ['nonpadKvSeqlen above total', () => withOpts({ nonpadKvSeqlen: BigInt64Array.of(5n, 6n) }), 'RangeError', 'opts.nonpadKvSeqlen', /values in \[0, 5\] \(the total key count\) for opts\.nonpadKvSeqlen but received 6 at index 1/],
  ['nonpadKvSeqlen negative', () => withOpts({ nonpadKvSeqlen: Int32Array.of(-1, 2) }), 'RangeError', 'opts.nonpadKvSeqlen', /values in \[0, 5\] .*but received -1 at index 0/],
  ['isCausal is 1', () => withOpts({ isCausal: 1 }), 'TypeError', 'opts.isCausal', /a boolean for opts\.isCausal but received number 1/],
  ['scale is NaN', () => withOpts({ scale: NaN }), 'RangeError', 'opts.scale', /a finite number for opts\.scale but received NaN/],
  ['scale is a string', () => withOpts({ scale: '0.5' }), 'TypeError', 'opts.scale', /a number for opts\.scale but received string "0\.5"/],
  ['softcap is negative', () => withOpts({ softcap: -1 }), 'RangeError', 'opts.softcap', /a finite number >= 0 for opts\.softcap but received -1/],
  ['softcap is Infinity', () => withOpts({ softcap: Infinity }), 'RangeError', 'opts.softcap', /but received Infinity/],
  ['qkMatmulOutputMode is 4', () => withOpts({ qkMatmulOutputMode: 4 }), 'RangeError', 'opts.qkMatmulOutputMode', /an integer 0, 1, 2 or 3 for opts\.qkMatmulOutputMode but received 4/],
  ['qkMatmulOutputMode is -1', () => withOpts({ qkMatmulOutputMode: -1 }), 'RangeError', 'opts.qkMatmulOutputMode', /but received -1/],
  ['qkMatmulOutputMode is a string', () => withOpts({ qkMatmulOutputMode: '1' }), 'TypeError', 'opts.qkMatmulOutputMode', /but received string "1"/],
  ['q on a detached buffer', () => [{ data: detachedFloat32(192), dims: [2, 4, 3, 8] }, base().k, base().v], 'TypeError', 'q.data', /on a live \(not detached\) ArrayBuffer for q\.data but received Float32Array of length 0 on a detached ArrayBuffer/],
  ['pastValue on a detached buffer', () => withOpts({ pastKey: f32([2, 2, 1, 8]), pastValue: { data: detachedFloat32(16), dims: [2, 2, 1, 8] } }), 'TypeError', 'opts.pastValue.data', /detached ArrayBuffer/],
  ['attnMask on a detached buffer', () => {
    const data = new Uint8Array(15);
    structuredClone(data.buffer, { transfer: [data.buffer] });
    return withOpts({ attnMask: { data, dims: [3, 5] } });
  }, 'TypeError', 'opts.attnMask.data', /detached ArrayBuffer/],
];

forEachBackend('attention argument errors', () => {
  it.each(errorCases)('%s', (_title, args, kind, name, message) => {
    const err = publicError(() => api.attention(...(args() as Parameters<typeof api.attention>)), kind, name);
    expect(err.message).toMatch(message);
  });

  it.each(errorCases)('attentionAsync rejects (never throws) when %s', async (_title, args, kind, _name, message) => {
    let promise: Promise<unknown> | undefined;
    expect(() => { promise = api.attentionAsync(...(args() as Parameters<typeof api.attention>)); }).not.toThrow();
    const err = await promise!.then(() => null, (e: unknown) => e as Error);
    expect(err?.constructor.name).toBe(kind);
    expect(err?.message).toMatch(message);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties over random shapes and options.

const validCall = fc.record({
  rank: fc.constantFrom(3 as const, 4 as const), B: fc.integer({ min: 1, max: 2 }), Hkv: fc.integer({ min: 1, max: 3 }),
  group: fc.integer({ min: 1, max: 3 }), Sq: fc.integer({ min: 1, max: 6 }), Skv: fc.integer({ min: 1, max: 9 }),
  D: fc.integer({ min: 1, max: 20 }), Dv: fc.integer({ min: 1, max: 20 }), past: fc.integer({ min: 0, max: 5 }),
  isCausal: fc.boolean(), softcap: fc.constantFrom(0, 1.5), scale: fc.option(fc.double({ min: 0.05, max: 2, noNaN: true }), { nil: undefined }),
  mask: fc.constantFrom('none', 'bool', 'float'), maskRank: fc.integer({ min: 1, max: 4 }), maskOnes: fc.integer({ min: 0, max: 7 }),
  maskShort: fc.integer({ min: 0, max: 3 }), nonpad: fc.constantFrom('none', 'int32', 'int64'),
  mode: fc.constantFrom(undefined, 0, 1, 2, 3), seed: fc.integer({ min: 1, max: 1e6 }),
});
type ValidCall = typeof validCall extends fc.Arbitrary<infer T> ? T : never;

function build(c: ValidCall): { inputs: Inputs; opts: RefOptions } {
  const s = shape({ B: c.B, Hq: c.Hkv * c.group, Hkv: c.Hkv, Sq: c.Sq, Skv: c.Skv, D: c.D, Dv: c.Dv, past: c.past });
  const inputs = makeInputs(s, c.rank, c.seed), T = total(s);
  const opts: RefOptions = { ...inputs.opts, isCausal: c.isCausal, softcap: c.softcap, scale: c.scale, qkMatmulOutputMode: c.mode };
  if (c.mask !== 'none') {
    // Leading dims of the mask's rank, each full or (bit set in maskOnes) 1; last dim total - maskShort.
    const full = [s.B, s.Hq, s.Sq].slice(4 - c.maskRank).map((d, i) => ((c.maskOnes >> i) & 1 ? 1 : d));
    const dims = [...full, Math.max(1, T - c.maskShort)];
    opts.attnMask = c.mask === 'bool' ? boolMask(dims, c.seed) : floatMask(dims, c.seed);
  }
  // ONNX does not combine nonpad_kv_seqlen with a past (an error case of its own).
  if (c.nonpad !== 'none' && s.past === 0) {
    const lengths = Array.from({ length: s.B }, (_, b) => (c.seed + 3 * b) % (T + 1));
    opts.nonpadKvSeqlen = c.nonpad === 'int32' ? Int32Array.from(lengths) : BigInt64Array.from(lengths, BigInt);
  }
  for (const key of Object.keys(opts) as (keyof RefOptions)[]) if (opts[key] === undefined) delete opts[key];
  return { inputs, opts };
}

forEachBackend('attention properties', () => {
  it('random valid calls match the float64 reference', () => {
    fc.assert(fc.property(validCall, (c) => {
      const { inputs, opts } = build(c);
      expectMatchesRef(inputs, opts, JSON.stringify(c));
    }), { numRuns: 150 });
  });

  it('random invalid calls throw a clean TypeError or RangeError', () => {
    const corruptions: ((a: Args, c: ValidCall, bad: unknown, pick: number) => void)[] = [
      (a, _c, bad) => { a[0] = bad; },
      (a, _c, bad) => { a[1] = { ...(a[1] as object), data: bad }; },
      (a, _c, bad) => { a[2] = { ...(a[2] as object), dims: bad }; },
      (a) => { const k = a[1] as { dims: number[] }; a[1] = { ...k, dims: [...k.dims.slice(0, -1), k.dims[k.dims.length - 1] + 1] }; },
      (a, _c, bad) => { (a[3] as Record<string, unknown>).attnMask = bad; },
      (a, _c, bad) => { (a[3] as Record<string, unknown>).pastKey = bad; },
      (a, _c, bad) => { (a[3] as Record<string, unknown>).nonpadKvSeqlen = bad; },
      (a, c) => { (a[3] as Record<string, unknown>).nonpadKvSeqlen = Int32Array.from({ length: c.B }, () => c.Skv + c.past + 1); },
      (a, _c, bad, pick) => { (a[3] as Record<string, unknown>)[['scale', 'softcap', 'isCausal', 'qkMatmulOutputMode', 'qNumHeads', 'kvNumHeads'][pick]] = bad ?? null; },
      (a) => { (a[3] as Record<string, unknown>).softmaxPrecision = 1; },
    ];
    // Corruptions no value can make valid: q replaced by a hostile value (never a tensor), k's last
    // dim off by one, nonpadKvSeqlen above the key count (or combined with a past), an unknown option.
    const alwaysInvalid = new Set([0, 3, 7, 9]);
    fc.assert(fc.property(validCall, fc.nat(corruptions.length - 1), hostileValue(), fc.nat(5), (c, which, bad, pick) => {
      const { inputs, opts } = build(c);
      const args: Args = [inputs.q, inputs.k, inputs.v, { ...opts }];
      corruptions[which](args, c, bad, pick);
      const call = () => api.attention(...(args as Parameters<typeof api.attention>));
      if (alwaysInvalid.has(which)) {
        expect(cleanError(call).message).toMatch(/^Expected /);
        return;
      }
      let threw = true;
      try {
        call();
        threw = false;
      } catch {
        // checked below
      }
      // A hostile value can happen to be valid (e.g. a boolean for isCausal); when it throws, it must throw cleanly.
      if (threw) expect(cleanError(call).message).toMatch(/^Expected /);
    }), { numRuns: FUZZ_RUNS });
  });
});

describe.skipIf(!nativeAvailable)('attention: native == JS on random valid calls', () => {
  it('agrees within tolerance, and each with the float64 reference', () => {
    fc.assert(fc.property(validCall, (c) => {
      const { inputs, opts } = build(c);
      const results = (['js', 'native'] as const).map((name) => {
        api.useBackend(name);
        return api.attention(inputs.q, inputs.k, inputs.v, opts as AttentionOptions);
      });
      // Both backends share the validated plan: the float64 reference checks what they agree on.
      const ref = attentionRef(inputs.q, inputs.k, inputs.v, opts);
      const want = { y: ref.y, presentKey: ref.presentKey, presentValue: ref.presentValue, qkMatmulOutput: ref.qk };
      for (const key of ['y', 'presentKey', 'presentValue', 'qkMatmulOutput'] as const) {
        expect(results[1][key]?.dims, key).toEqual(results[0][key]?.dims);
        if (!results[0][key]) continue;
        expectClose(results[1][key]!.data, results[0][key]!.data, ATOL, RTOL, `${key} ${JSON.stringify(c)}`);
        results.forEach((r, i) => expectClose(r[key]!.data, want[key], ATOL, RTOL, `${['js', 'native'][i]} ${key} vs float64 ${JSON.stringify(c)}`));
      }
    }), { numRuns: 150 });
  });
});
