// attention() / attentionAsync() on both backends against the float64 reference (helpers/attention-ref.ts):
// every ONNX variant in 4-D and 3-D layouts, the seeds' worked example, and the invariants.
import { describe, expect, it } from 'vitest';
import type { AttentionOptions, AttentionResult } from '../dist/index.js';
import { api, forEachBackend } from './helpers/backends';
import { attentionRef, boolMask, floatMask, makeInputs, values, type Inputs, type RefOptions, type Shape } from './helpers/attention-ref';
import { expectClose } from './helpers/oracle';

// Inputs in [-1, 1): scores are float32 dot products of at most 256 terms and y a convex mix of
// values, so float32 storage and the native exp approximation stay far inside these bounds.
const ATOL = 2e-5, RTOL = 2e-4;

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
  'nonpad with past and causal (offset = past)': { shape: shape({ Sq: 2, Skv: 2, past: 4 }), opts: () => ({ isCausal: true, nonpadKvSeqlen: Int32Array.of(5, 6) }) },
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
    expectClose(gqa.y.data, mha.y.data, 1e-6, 1e-5, 'GQA vs MHA');
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
    const opts = { ...base.opts, isCausal: true, attnMask: boolMask([s.Sq, total(s)], 26), nonpadKvSeqlen: Int32Array.of(7, 6), qkMatmulOutputMode: 3 } as AttentionOptions;
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
    expect(Array.from(opts.nonpadKvSeqlen as Int32Array)).toEqual([7, 6]);
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

  it.skipIf(backend === 'js')('keeps the event loop turning during a long attentionAsync (native: libuv pool)', async () => {
    // ~8.6 GFLOP: a few hundred ms on the native kernel; the JS backend cannot leave the loop.
    const s = shape({ B: 1, Hq: 8, Hkv: 8, Sq: 2048, Skv: 2048, D: 64, Dv: 64 });
    const { q, k, v } = makeInputs(s, 4, 29);
    let ticks = 0, running = true;
    const spin = () => {
      ticks++;
      if (running) setImmediate(spin);
    };
    setImmediate(spin);
    const result = await api.attentionAsync(q, k, v);
    running = false;
    expect(result.y.dims).toEqual([1, 8, 2048, 64]);
    expect(ticks).toBeGreaterThan(20);
  });
});
