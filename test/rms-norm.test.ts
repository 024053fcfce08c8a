// rmsNorm(x, weight, { eps }) on both backends against float64 (HF LlamaRMSNorm's math:
// x / sqrt(mean(x^2) + eps) * weight over the last dim), native against JS on every kernel set,
// the argument errors, and hostile calls to the raw binding.
import { describe, expect, it } from 'vitest';
import type { Binding } from '../dist/native/binding.js';
import { loaded } from '../dist/native/load.js';
import { api, forEachBackend, nativeAvailable } from './helpers/backends';
import { badSizes, cleanError, detachedFloat32, notFloat32, publicError } from './helpers/hostile';
import { expectClose, firstMismatch, randomArray } from './helpers/oracle';

function rmsNormRef(x: Float32Array, width: number, weight: Float32Array, eps: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let o = 0; o < x.length; o += width) {
    let sq = 0;
    for (let i = 0; i < width; i++) sq += x[o + i] * x[o + i];
    const inv = 1 / Math.sqrt(sq / width + eps);
    for (let i = 0; i < width; i++) y[o + i] = x[o + i] * inv * weight[i];
  }
  return y;
}

// Magnitudes from 1e-3 to 1e2 within a row, so a lost or float-summed square would show.
function rows(n: number, seed: number): Float32Array {
  return randomArray(n, seed).map((v, i) => v * 10 ** ((i % 6) - 3));
}

// Measured (both backends; NODE_ATTENTION_ERROR_LOG): worst relative error 1.4e-7 (r, x * r and
// weight * (.) each rounded to float32 once); bound 5e-7, 3.5x.
const RTOL = 5e-7;

forEachBackend('rmsNorm', () => {
  for (const dims of [[64], [3, 17], [2, 3, 128], [1, 1, 2, 4099]]) {
    it(`normalizes the last dim of x [${dims.join(', ')}]`, () => {
      const size = dims.reduce((p, d) => p * d, 1), width = dims[dims.length - 1];
      const x = { data: rows(size, dims.length), dims }, weight = randomArray(width, 7);
      const y = api.rmsNorm(x, weight, { eps: 1e-5 });
      expect(y.dims).toEqual(dims);
      expect(y.data).not.toBe(x.data);
      expectClose(y.data, rmsNormRef(x.data, width, weight, 1e-5), 1e-30, RTOL, 'rmsNorm');
      expectClose(api.rmsNorm(x, { data: weight, dims: [width] }, { eps: 1e-5 }).data, y.data, 0, 0, 'weight as a Tensor');
    });
  }

  it('defaults eps to 1e-6, and eps matters (the bound bites)', () => {
    // Tiny values: mean(x^2) ~ 3e-7, so eps 1e-6 against 1e-5 changes every output.
    const x = randomArray(256, 3).map((v) => v * 1e-3), weight = randomArray(256, 4);
    const y = api.rmsNorm(x, weight);
    expectClose(y.data, rmsNormRef(x, 256, weight, 1e-6), 1e-30, RTOL);
    expectClose(api.rmsNorm(x, weight, { eps: 1e-6 }).data, y.data, 0, 0);
    expect(firstMismatch(y.data, rmsNormRef(x, 256, weight, 1e-5), 1e-30, RTOL)).toBeGreaterThanOrEqual(0);
    // LayerNorm (mean subtracted) is another op.
    const shifted = randomArray(64, 5).map((v) => v + 0.5), w = new Float32Array(64).fill(1);
    const mean = shifted.reduce((s, v) => s + v, 0) / 64;
    const layerNorm = rmsNormRef(shifted.map((v) => v - mean), 64, w, 1e-6);
    expect(firstMismatch(api.rmsNorm(shifted, w).data, layerNorm, 1e-30, RTOL)).toBeGreaterThanOrEqual(0);
  });

  it('names the argument in every error', () => {
    const x = { data: new Float32Array(12), dims: [3, 4] }, w = new Float32Array(4);
    publicError(() => api.rmsNorm([1, 2] as never, w), 'TypeError', 'x');
    publicError(() => api.rmsNorm({ data: new Float32Array(12), dims: [3, 5] }, w), 'RangeError', 'x');
    publicError(() => api.rmsNorm(x, new Float32Array(3)), 'RangeError', 'weight');
    publicError(() => api.rmsNorm(x, { data: new Float32Array(4), dims: [2, 2] }), 'RangeError', 'weight');
    publicError(() => api.rmsNorm(x, new Float64Array(4) as never), 'TypeError', 'weight');
    publicError(() => api.rmsNorm(x, detachedFloat32(4)), 'TypeError', 'weight');
    publicError(() => api.rmsNorm(x, w, { eps: '1e-6' } as never), 'TypeError', 'opts.eps');
    for (const eps of [-1e-6, NaN, Infinity]) publicError(() => api.rmsNorm(x, w, { eps }), 'RangeError', 'opts.eps');
    publicError(() => api.rmsNorm(x, w, { epsilon: 1e-6 } as never), 'RangeError', 'opts');
    publicError(() => api.rmsNorm(x, w, 1e-6 as never), 'TypeError', 'opts');
  });
});

describe.skipIf(!nativeAvailable)('rmsNorm: native against JS', () => {
  it('agree on every kernel set within 1 float32 ulp (both sum squares in float64; measured: 0)', () => {
    const x = rows(7 * 2051, 9), weight = randomArray(2051, 10);
    api.useBackend('js');
    const want = api.rmsNorm({ data: x, dims: [7, 2051] }, weight).data;
    api.useBackend('native');
    try {
      for (const isa of api.backendInfo().simdSupported) {
        expect(api.setSimd(isa)).toBe(true);
        expectClose(api.rmsNorm({ data: x, dims: [7, 2051] }, weight).data, want, 0, 1.2e-7, isa);
      }
    } finally {
      api.setSimd(api.backendInfo().simdSupported[0]);
    }
  });
});

const raw = loaded.binding as Binding | null;
describe.skipIf(!raw)('raw binding: rmsNorm', () => {
  it('refuses every bad argument with a TypeError or RangeError', () => {
    const call = raw!.rmsNorm as (...a: unknown[]) => void;
    const good = (): unknown[] => [new Float32Array(12), new Float32Array(4), new Float32Array(12), 3, 4, 1e-6];
    call(...good());
    for (let slot = 0; slot < 3; slot++) {
      for (const [, make] of notFloat32) {
        const args = good();
        args[slot] = make();
        cleanError(() => call(...args));
      }
      const args = good();
      args[slot] = detachedFloat32(12);
      cleanError(() => call(...args), 'TypeError');
    }
    for (const slot of [3, 4]) {
      for (const bad of badSizes) {
        const args = good();
        args[slot] = bad;
        cleanError(() => call(...args));
      }
    }
    for (const bad of ['1', null, NaN, -1, Infinity]) {
      const args = good();
      args[5] = bad;
      cleanError(() => call(...args));
    }
    const short = good(); short[0] = new Float32Array(11); cleanError(() => call(...short), 'RangeError');
    const out = good(); out[2] = new Float32Array(11); cleanError(() => call(...out), 'RangeError');
    const weight = good(); weight[1] = new Float32Array(3); cleanError(() => call(...weight), 'RangeError');
    const zero = good(); zero[4] = 0; cleanError(() => call(...zero), 'RangeError');
    const huge = good(); huge[3] = 2 ** 52; cleanError(() => call(...huge), 'RangeError');
  });
});
