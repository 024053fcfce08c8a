// Kernel-specific attention cases: sizes around the native tile edges (16-row Q panels, 6-row PV
// blocks, 96-key steps, 8-lane vectors), GQA/MQA grouping, the split-K decode path, fully masked
// rows, the vectorized exp, a long context with bounded memory, the scalar kernel set against
// AVX2, and the raw binding's own re-checks. Every result is compared with the float64 reference
// in test/helpers/attention-ref.ts; the general operator semantics live in attention.test.ts.
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { Binding } from '../dist/native/binding.js';
import { loaded } from '../dist/native/load.js';
import { api, forEachBackend, nativeAvailable } from './helpers/backends';
import { attentionRef, boolMask, floatMask, makeInputs, values, type Shape } from './helpers/attention-ref';
import { expectClose } from './helpers/oracle';

type Raw = Binding & {
  attention(...args: unknown[]): void;
  attentionAsync(...args: unknown[]): Promise<{ y: Float32Array; qkOut: Float32Array | null }>;
  _vecExpsum(x: Float32Array, max: number): number;
};
const raw = loaded.binding as Raw | null;

// The float64 reference is slow next to the kernels, and the shared 2-core machine slower still.
vi.setConfig({ testTimeout: 60_000 });

// Worst errors against the float64 reference here, on every kernel set (avx512, avx2, scalar;
// NODE_ATTENTION_ERROR_LOG, helpers/oracle.ts): 1.6e-7 absolute (|y| < 1), 2.4e-7 relative
// (|y| >= 1), scalar vs SIMD 1.4e-7. Bounds ~4x.
const ATOL = 7e-7, RTOL = 1e-6;

function shape(s: Partial<Shape>): Shape {
  return { B: 1, Hq: 1, Hkv: 1, Sq: 1, Skv: 1, D: 8, Dv: 8, past: 0, ...s };
}

/** Runs attention on seeded inputs and checks y (and qkMatmulOutput when asked) against float64. */
function check(s: Shape, rank: 3 | 4, opts: Record<string, unknown> = {}, seed = 1): Float32Array {
  const { q, k, v, opts: base } = makeInputs(s, rank, seed);
  const all = { ...base, ...opts };
  const out = api.attention(q, k, v, all);
  const ref = attentionRef(q, k, v, all);
  const label = `${JSON.stringify(s)} rank ${rank} ${JSON.stringify(Object.keys(opts))}`;
  expect(out.y.data.every((x) => Number.isFinite(x)), `${label}: finite y`).toBe(true);
  expectClose(out.y.data, ref.y, ATOL, RTOL, label);
  if (out.qkMatmulOutput) expectClose(out.qkMatmulOutput.data, ref.qk, ATOL, RTOL, `${label} qk`);
  return out.y.data;
}

// (Sq, Skv) pairs below, at and above the kernels' edges; each D gets a few of them.
const EDGES: [number, number][] = [
  [1, 1], [1, 97], [7, 130], [17, 96], [47, 49], [95, 97], [96, 96], [97, 95], [130, 7], [130, 130], [9, 33],
];
const HEAD_SIZES = [1, 3, 8, 16, 17, 64, 65, 128, 256];

forEachBackend('attention kernels: tile edges', () => {
  HEAD_SIZES.forEach((D, di) => {
    it(`D = ${D}: odd Sq/Skv around the tile sizes, causal and not (GQA 4/2)`, () => {
      // Fewer and smaller calls for the big head sizes keep the float64 reference quick.
      const calls = D >= 64 ? 2 : 3, B = D >= 64 ? 1 : 2;
      for (let e = 0; e < calls; e++) {
        const [Sq, Skv] = EDGES[(di * 3 + e) % EDGES.length];
        const Dv = D === 17 ? 5 : D;
        for (const isCausal of [false, true]) check(shape({ B, Hq: 4, Hkv: 2, Sq, Skv, D, Dv }), 4, { isCausal });
      }
    });
  });

  it('GQA 32/8 and MQA 8/1: causal with a past (Skv != Sq), 4-D and 3-D', () => {
    for (const [Hq, Hkv] of [[32, 8], [8, 1]]) {
      check(shape({ Hq, Hkv, Sq: 19, Skv: 19, past: 40, D: 16, Dv: 16 }), 4, { isCausal: true });
      check(shape({ B: 2, Hq, Hkv, Sq: 5, Skv: 5, past: 27, D: 8, Dv: 12 }), 3, { isCausal: true });
      check(shape({ Hq, Hkv, Sq: 33, Skv: 10, D: 16, Dv: 16 }), 4, { isCausal: true });
    }
  });

  it('decode: Sq 1..8 against long key ranges (split across threads), with nonpad lengths', () => {
    for (const Sq of [1, 3, 8]) {
      check(shape({ Hq: 4, Hkv: 1, Sq, Skv: Sq, past: 2500 - Sq, D: 64, Dv: 64 }), 4, { isCausal: true });
      check(shape({ B: 2, Hq: 2, Hkv: 2, Sq, Skv: 1800, D: 32, Dv: 32 }), 4, { nonpadKvSeqlen: Int32Array.of(700, 1800) });
      check(shape({ B: 2, Hq: 1, Hkv: 1, Sq, Skv: 1500, D: 16, Dv: 16 }), 4, { isCausal: true, nonpadKvSeqlen: Int32Array.of(3, 1400) });
    }
  });

  it('masks, softcap and every qk output mode across a tile edge', () => {
    const s = shape({ B: 2, Hq: 4, Hkv: 2, Sq: 17, Skv: 100, D: 16, Dv: 16 });
    check(s, 4, { attnMask: floatMask([2, 4, 17, 100], 3), isCausal: true });
    check(s, 4, { attnMask: boolMask([17, 100], 4) });
    check(s, 4, { attnMask: floatMask([1, 4, 1, 91], 5), softcap: 1.5 });
    check(s, 3, { attnMask: boolMask([2, 1, 17, 60], 6), softcap: 0.5, isCausal: true });
    for (const mode of [0, 1, 2, 3]) check(s, 4, { qkMatmulOutputMode: mode, softcap: 2, attnMask: floatMask([100], 7), isCausal: true });
  });

  it('rows with no visible key give zeros, never NaN', () => {
    const s = shape({ B: 2, Hq: 2, Hkv: 1, Sq: 20, Skv: 110, D: 8, Dv: 8 });
    const { q, k, v } = makeInputs(s, 4);
    // Causal with nonpad 5 < Sq: queries 0..14 of batch 0 sit before every key.
    const a = api.attention(q, k, v, { isCausal: true, nonpadKvSeqlen: Int32Array.of(5, 0) });
    for (let h = 0; h < 2; h++) {
      for (let i = 0; i < 20; i++) {
        const row = a.y.data.subarray((h * 20 + i) * 8, (h * 20 + i + 1) * 8);
        expect(Array.from(row).every((x) => x === 0), `b0 h${h} i${i}`).toBe(i < 15);
      }
    }
    expect(Array.from(a.y.data.subarray(2 * 20 * 8)).every((x) => x === 0), 'b1: nonpad 0').toBe(true);
    const none = { data: new Uint8Array(20 * 110), dims: [20, 110] };
    const neg = { data: new Float32Array(110).fill(-Infinity), dims: [110] };
    for (const attnMask of [none, neg]) {
      const r = api.attention(q, k, v, { attnMask, qkMatmulOutputMode: 3 });
      expect(r.y.data.every((x) => x === 0)).toBe(true);
      expect(r.qkMatmulOutput!.data.every((x) => x === 0)).toBe(true);
      expect(api.attention(q, k, v, { attnMask }).y.data.every((x) => x === 0)).toBe(true);
    }
  });

  it('logits of +-1e4 against many keys give exact one-hot probabilities', () => {
    const Skv = 200, D = 4;
    const q = { data: Float32Array.of(100, 0, 0, 0, -100, 0, 0, 0), dims: [1, 1, 2, D] };
    const kd = new Float32Array(Skv * D), vd = new Float32Array(Skv * 2);
    for (let j = 0; j < Skv; j++) {
      kd[j * D] = j === 150 ? 100 : j === 3 ? -100 : (j % 7) - 3;
      vd[j * 2] = j;
      vd[j * 2 + 1] = -j;
    }
    const r = api.attention(q, { data: kd, dims: [1, 1, Skv, D] }, { data: vd, dims: [1, 1, Skv, 2] }, { scale: 1 });
    expect(Array.from(r.y.data)).toEqual([150, -150, 3, -3]);
  });
});

// The long-context case runs on native only: the JS backend would take seconds here.
describe.skipIf(!nativeAvailable)('attention kernels: long context', () => {
  it('S = 8192 causal runs without materializing S x S scores and matches the reference rows', () => {
    api.useBackend('native');
    const S = 8192, H = 2, D = 64;
    const q = { data: values(H * S * D, 11), dims: [1, H, S, D] };
    const k = { data: values(H * S * D, 12), dims: [1, H, S, D] };
    const v = { data: values(H * S * D, 13), dims: [1, H, S, D] };
    const before = process.memoryUsage().rss;
    const y = api.attention(q, k, v, { isCausal: true }).y.data;
    const grown = process.memoryUsage().rss - before;
    // One head's score matrix alone would be 256 MiB; y is 4 MiB.
    expect(grown).toBeLessThan(64 * 2 ** 20);
    const scale = 1 / Math.sqrt(D);
    for (const [h, i] of [[0, 0], [0, 95], [1, 4097], [1, S - 1]]) {
      const qi = q.data.subarray((h * S + i) * D, (h * S + i + 1) * D);
      const scores = new Float64Array(i + 1);
      let max = -Infinity;
      for (let j = 0; j <= i; j++) {
        let dot = 0;
        for (let d = 0; d < D; d++) dot += qi[d] * k.data[(h * S + j) * D + d];
        scores[j] = dot * scale;
        max = Math.max(max, scores[j]);
      }
      const want = new Float64Array(D);
      let sum = 0;
      for (let j = 0; j <= i; j++) {
        const p = Math.exp(scores[j] - max);
        sum += p;
        for (let d = 0; d < D; d++) want[d] += p * v.data[(h * S + j) * D + d];
      }
      expectClose(y.subarray((h * S + i) * D, (h * S + i + 1) * D), want.map((x) => x / sum), ATOL, RTOL, `h${h} row ${i}`);
    }
  });
});

describe.skipIf(!nativeAvailable)('attention kernels: scalar set vs AVX2', () => {
  afterAll(() => {
    api.setSimd(api.backendInfo().simdSupported[0]);
  });

  it('the scalar kernels match the reference and the SIMD kernels', () => {
    api.useBackend('native');
    const cases: [Shape, 3 | 4, Record<string, unknown>][] = [
      [shape({ B: 2, Hq: 4, Hkv: 2, Sq: 37, Skv: 101, D: 65, Dv: 33 }), 4, { isCausal: true }],
      [shape({ Hq: 8, Hkv: 1, Sq: 1, Skv: 1, past: 1999, D: 64, Dv: 64 }), 4, { isCausal: true }],
      [shape({ B: 2, Hq: 2, Hkv: 2, Sq: 20, Skv: 50, D: 17, Dv: 17 }), 3, { softcap: 1, attnMask: floatMask([2, 1, 20, 45], 9) }],
      [shape({ Hq: 2, Hkv: 1, Sq: 5, Skv: 300, D: 3, Dv: 3 }), 4, { attnMask: boolMask([300], 2), qkMatmulOutputMode: 3 }],
    ];
    for (const isa of api.backendInfo().simdSupported) {
      expect(api.setSimd(isa)).toBe(true);
      const ys = cases.map(([s, rank, opts]) => check(s, rank, opts));
      if (isa !== 'scalar') continue;
      api.setSimd(api.backendInfo().simdSupported[0]);
      cases.forEach(([s, rank, opts], n) => {
        const { q, k, v, opts: base } = makeInputs(s, rank);
        expectClose(ys[n], api.attention(q, k, v, { ...base, ...opts }).y.data, ATOL, RTOL, `case ${n} scalar vs SIMD`);
      });
    }
  });
});

describe.skipIf(!raw)('attention kernels: vectorized exp (test-only _vecExpsum)', () => {
  it('is within 2.5e-7 relative of Math.exp over [-87.3, 88] on every kernel set, and exact at the edges', () => {
    const addon = raw!;
    const n = 200_003;
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = -87.3 + (175.3 * i) / (n - 1);
    for (const isa of addon.info().isas) {
      addon.selectIsa(isa);
      const e = x.slice();
      addon._vecExpsum(e, 0);
      let worst = 0;
      for (let i = 0; i < n; i++) {
        const want = Math.exp(x[i]);
        worst = Math.max(worst, Math.abs(e[i] - want) / want);
      }
      expect(worst, `${isa} max relative error`).toBeLessThan(2.5e-7);
      // e^-104 is below the smallest subnormal float, e^89 above the largest float.
      const special = Float32Array.of(-Infinity, -104, -1000, 0, Number.NaN, 89, Infinity, -0);
      const sum = addon._vecExpsum(special, 0);
      expect(Array.from(special)).toEqual([0, 0, 0, 1, Number.NaN, Infinity, Infinity, 1]);
      expect(sum).toBeNaN();
      const row = Float32Array.of(3, 1, -2, 5, 5, 0, 4, 1, 2);
      const total = addon._vecExpsum(row, 5);
      const want = [3, 1, -2, 5, 5, 0, 4, 1, 2].map((t) => Math.exp(t - 5));
      expectClose(row, want, 0, 2.5e-7, `${isa} expsum`);
      expect(total).toBeCloseTo(want.reduce((a, b) => a + b, 0), 5);
    }
    addon.selectIsa(addon.info().isas[0]);
  });
});

describe.skipIf(!raw)('attention binding: raw calls are re-checked', () => {
  const addon = raw!;
  // B1 Hq2 Hkv1 Sq3 Skv4 D2 Dv2, contiguous 4-D.
  const base = () => Float64Array.of(1, 2, 1, 3, 4, 2, 2, 12, 6, 2, 8, 8, 2, 8, 8, 2, 12, 6, 2, 0, 0, 0, 0, 0.5, 0, 0, -1);
  const args = (p = base()) => [new Float32Array(12), new Float32Array(8), new Float32Array(8), new Float32Array(12), null, null, null, null, p];
  const withParam = (i: number, value: number) => {
    const p = base();
    p[i] = value;
    return args(p);
  };

  // attentionAsync takes the same arguments without the outputs y and qkOut, which it creates.
  const asyncArgs = (call: unknown[]) => [call[0], call[1], call[2], call[4], call[5], call[6], call[8]];

  it('accepts the valid call (sync and async)', async () => {
    const sync = args();
    expect(addon.attention(...sync)).toBeUndefined();
    const out = await addon.attentionAsync(...asyncArgs(args()));
    expect(out.y).toEqual(sync[3]);
    expect(out.qkOut).toBeNull();
  });

  it('throws RangeError for sizes and strides that reach past an array, and TypeError for wrong kinds', async () => {
    const bad: [unknown[], ErrorConstructor][] = [
      [withParam(9, 3), RangeError], // q_st 3: q reaches element 14 of 12
      [withParam(12, 3), RangeError], // k_st
      [withParam(4, 5), RangeError], // Skv 5
      [withParam(2, 3), RangeError], // Hq % Hkv
      [withParam(2, 0), RangeError],
      [withParam(3, -1), RangeError],
      [withParam(5, 1.5), RangeError],
      [withParam(26, 4), RangeError], // qkMode
      [withParam(25, 2), RangeError], // causal
      [withParam(18, 0), RangeError], // y_st 0: rows would share addresses
      [args(new Float64Array(26)), RangeError],
      [[...args().slice(0, 8), new Float32Array(27)], TypeError],
      [[new Float64Array(12), ...args().slice(1)], TypeError],
      [[...args().slice(0, 4), new Int16Array(4), ...args().slice(5)], TypeError],
      [[...args().slice(0, 5), Int32Array.of(1, 2), ...args().slice(6)], RangeError], // kvValid length
      [[...args().slice(0, 5), Int32Array.of(5), ...args().slice(6)], RangeError], // kvValid > Skv
      [[...args().slice(0, 6), Int32Array.of(0, 0), ...args().slice(7)], RangeError], // causalOffset length
    ];
    // Cases about the caller's y or qkOut arrays: the async form has none.
    const syncOnly: [unknown[], ErrorConstructor][] = [
      [[...args().slice(0, 7), new Float32Array(24), base()], TypeError], // qkOut with qkMode -1
    ];
    const maskP = base();
    maskP.set([0, 0, 4, 4], 19);
    bad.push([[...args().slice(0, 4), new Float32Array(11), null, null, null, maskP], RangeError]); // mask needs 12
    maskP[22] = 5;
    bad.push([[...args().slice(0, 4), new Float32Array(40), null, null, null, maskP], RangeError]); // mask_len > Skv
    const qk = base();
    qk[26] = 3;
    syncOnly.push([[...args().slice(0, 7), new Float32Array(23), qk], RangeError]); // qkOut needs 24
    for (const [call, kind] of bad) {
      expect(() => addon.attention(...call)).toThrow(kind);
      await expect(addon.attentionAsync(...asyncArgs(call))).rejects.toThrow(kind);
    }
    for (const [call, kind] of syncOnly) expect(() => addon.attention(...call)).toThrow(kind);
    const withQk = await addon.attentionAsync(...asyncArgs(args(qk)));
    expect(withQk.qkOut).toHaveLength(24);
  });

  it('rejects an output that overlaps an input', () => {
    const buffer = new Float32Array(24);
    const a = args();
    a[0] = buffer.subarray(0, 12);
    a[3] = buffer.subarray(11, 23);
    expect(() => addon.attention(...a)).toThrow(/overlap q/);
    a[3] = buffer.subarray(12, 24);
    expect(addon.attention(...a)).toBeUndefined();
  });
});

// How long the event loop may wait during attentionAsync is measured, alone, by
// test/attention-async.timing.ts (largest gap < 50 ms); here only that the pool computes the same bits.
describe.skipIf(!nativeAvailable)('attentionAsync on native', () => {
  it('computes a prefill on the thread pool bit for bit like the synchronous call', async () => {
    api.useBackend('native');
    const s = shape({ Hq: 8, Hkv: 8, Sq: 1024, Skv: 1024, D: 64, Dv: 64 });
    const { q, k, v } = makeInputs(s, 4);
    const result = await api.attentionAsync(q, k, v);
    expectClose(result.y.data, api.attention(q, k, v).y.data, 0, 0, 'async == sync');
  });
});
