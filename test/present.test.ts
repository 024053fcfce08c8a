// ONNX Attention's present key/value (pastKey/pastValue given): the backends' concatPresent, through
// the public attention() on both backends and through the raw native binding, whose result lives
// in recycled memory (native/binding/pool_worker.h) and must never show a previous result's data.
import { describe, expect, it } from 'vitest';
import type { Binding } from '../dist/native/binding.js';
import { loaded } from '../dist/native/load.js';
import { createWire } from '../dist/native/wire.js';
import { api, forEachBackend } from './helpers/backends';
import { cleanError, detachedFloat32 } from './helpers/hostile';
import { randomArray } from './helpers/oracle';

/** past then new rows per (b, h), new rows read from a 4-D [B, H, S, d] or 3-D [B, S, H*d] x: in float64, by index. */
function presentRef(past: Float32Array, x: Float32Array, B: number, H: number, P: number, S: number, d: number, rank: 3 | 4): number[] {
  const out: number[] = [];
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let t = 0; t < P; t++) for (let e = 0; e < d; e++) out.push(past[((b * H + h) * P + t) * d + e]);
      for (let s = 0; s < S; s++) {
        for (let e = 0; e < d; e++) out.push(x[rank === 4 ? ((b * H + h) * S + s) * d + e : ((b * S + s) * H + h) * d + e]);
      }
    }
  }
  return out;
}

forEachBackend('attention with a past: presentKey/presentValue', () => {
  it.each([[4, 2, 4, 2, 3, 1, 8], [4, 1, 2, 2, 7, 5, 5], [3, 2, 3, 1, 4, 2, 6], [3, 1, 1, 1, 64, 1, 16]])(
    'rank %i, B%i Hq%i Hkv%i past %i, S%i, d%i', (rank, B, Hq, Hkv, P, S, d) => {
      const r = rank as 3 | 4;
      const dims = (H: number, T: number) => (r === 4 ? [B, H, T, d] : [B, T, H * d]);
      const t = (dims: number[], seed: number) => ({ data: randomArray(dims.reduce((p, x) => p * x, 1), seed), dims });
      const q = t(dims(Hq, S), 1), k = t(dims(Hkv, S), 2), v = t(dims(Hkv, S), 3);
      const pastKey = t([B, Hkv, P, d], 4), pastValue = t([B, Hkv, P, d], 5);
      const opts = { isCausal: true, pastKey, pastValue, ...(r === 3 ? { qNumHeads: Hq, kvNumHeads: Hkv } : {}) };
      const out = api.attention(q, k, v, opts);
      expect(out.presentKey!.dims).toEqual([B, Hkv, P + S, d]);
      expect(Array.from(out.presentKey!.data)).toEqual(presentRef(pastKey.data, k.data, B, Hkv, P, S, d, r));
      expect(Array.from(out.presentValue!.data)).toEqual(presentRef(pastValue.data, v.data, B, Hkv, P, S, d, r));
    });
});

const raw = loaded.binding as Binding | null;
describe.skipIf(!raw)('raw binding: concatPresent', () => {
  const addon = raw!;
  const wire = createWire(addon.wire);
  const params = (B: number, H: number, P: number, S: number, d: number, view = { sb: H * S * d, sh: S * d, st: d }) =>
    wire.present({ B, Hkv: H, past: P, Skv: S } as never, view, d);

  it('writes every element: recycled memory never shows an earlier result', async () => {
    const B = 2, H = 4, P = 300, S = 1, d = 64;
    const past = randomArray(B * H * P * d, 7), x = randomArray(B * H * S * d, 8);
    const want = presentRef(past, x, B, H, P, S, d, 4);
    for (let round = 0; round < 6; round++) {
      // Scribble over a present of the same size and drop it, so its memory is recycled.
      addon.concatPresent(new Float32Array(past.length).fill(Number.NaN), new Float32Array(x.length).fill(Number.NaN), params(B, H, P, S, d));
      await new Promise((resolve) => setTimeout(resolve, 1));
      expect(Array.from(addon.concatPresent(past, x, params(B, H, P, S, d)))).toEqual(want);
    }
  });

  it('re-checks sizes: short arrays, overlapping rows, zero sizes and hostile params throw cleanly', () => {
    const past = new Float32Array(2 * 3 * 4 * 5), x = new Float32Array(2 * 3 * 1 * 5);
    expect(addon.concatPresent(past, x, params(2, 3, 4, 1, 5))).toHaveLength(2 * 3 * 5 * 5);
    cleanError(() => addon.concatPresent(past.subarray(1), x, params(2, 3, 4, 1, 5)), 'RangeError');
    cleanError(() => addon.concatPresent(past, x.subarray(1), params(2, 3, 4, 1, 5)), 'RangeError');
    cleanError(() => addon.concatPresent(past, x, params(2, 3, 4, 1, 5, { sb: 15, sh: 5, st: 4 })), 'RangeError');
    cleanError(() => addon.concatPresent(past, x, params(0, 3, 4, 1, 5)), 'RangeError');
    cleanError(() => addon.concatPresent(past, x, params(2, 3, 4, 2 ** 40, 5)), 'RangeError');
    for (const field of Object.keys(addon.wire.present)) {
      for (const bad of [-1, 0.5, Number.NaN, Infinity, 2 ** 64]) {
        const p = params(2, 3, 4, 1, 5);
        p[Number(field)] = bad;
        cleanError(() => addon.concatPresent(past, x, p), 'RangeError');
      }
    }
    cleanError(() => addon.concatPresent(detachedFloat32(4), x, params(2, 3, 4, 1, 5)), 'TypeError');
    cleanError(() => addon.concatPresent(past, x, new Float64Array(3)), 'RangeError');
    cleanError(() => addon.concatPresent(past, x, [1, 2] as never), 'TypeError');
  });
});
