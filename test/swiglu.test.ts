// silu(x) and swiglu(gate, up) = silu(gate) * up on both backends against float64 (torch's formula
// x / (1 + exp(-x))), their IEEE special values, native against JS on every kernel set, the
// argument errors, and hostile calls to the raw binding.
import { describe, expect, it } from 'vitest';
import type { Binding } from '../dist/native/binding.js';
import { loaded } from '../dist/native/load.js';
import { api, forEachBackend, nativeAvailable } from './helpers/backends';
import { cleanError, detachedFloat32, notFloat32, publicError } from './helpers/hostile';
import { expectClose, firstMismatch, randomArray } from './helpers/oracle';

const siluRef = (v: number) => v / (1 + Math.exp(-v));
/** Values over [-scale, scale). */
const spread = (n: number, seed: number, scale: number) => randomArray(n, seed).map((v) => v * scale);

// Measured (NODE_ATTENTION_ERROR_LOG, |x| <= 40) against float64: worst relative error 1.8e-7 for
// silu and 2.0e-7 for swiglu (the SIMD exp's 1.65e-7, then 1 + e, the division, the product, each
// rounded once); bound 6e-7, 3x. Native against JS (two exps): 2.6e-7 and 3.3e-7; bound 1e-6, 3x.
// Absolute 1e-36: where -x passes a SIMD exp's overflow cut (88.376, before float's 88.72) silu
// is -0 instead of a value under 3.6e-37 in magnitude.
const RTOL = 6e-7, RTOL_NATIVE_JS = 1e-6, ATOL = 1e-36;

forEachBackend('silu and swiglu', () => {
  it('silu matches x / (1 + exp(-x)) over [-40, 40], any rank, Tensor or Float32Array', () => {
    const x = spread(1031, 1, 40);
    const y = api.silu(x);
    expect(y.dims).toEqual([1031]);
    expectClose(y.data, Array.from(x, siluRef), ATOL, RTOL, 'silu');
    const t = api.silu({ data: x.subarray(0, 1024), dims: [4, 16, 16] });
    expect(t.dims).toEqual([4, 16, 16]);
    expectClose(t.data, y.data.subarray(0, 1024), 0, 0);
    // The bound bites: GELU-tanh, or sigmoid without the factor x, is another function.
    const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
    expect(firstMismatch(y.data, Array.from(x, gelu), ATOL, RTOL)).toBeGreaterThanOrEqual(0);
    expect(firstMismatch(y.data, Array.from(x, (v) => 1 / (1 + Math.exp(-v))), ATOL, RTOL)).toBeGreaterThanOrEqual(0);
  });

  it('follows IEEE at the edges as torch does: silu(-100) = -0, silu(100) = 100, NaN and -inf give NaN', () => {
    const y = api.silu(Float32Array.from([-100, 100, NaN, -Infinity, Infinity, 0, -0, -1e30, 1e30])).data;
    expect(Object.is(y[0], -0)).toBe(true);
    expect(y[1]).toBe(100);
    expect(y[2]).toBeNaN();
    expect(y[3]).toBeNaN(); // -inf / (1 + inf), as torch's float32 kernel
    expect(y[4]).toBe(Infinity);
    expect(Object.is(y[5], 0)).toBe(true);
    expect(Object.is(y[6], -0)).toBe(true);
    expect(Object.is(y[7], -0)).toBe(true);
    expect(y[8]).toBe(Math.fround(1e30));
  });

  it('swiglu = silu(gate) * up, elementwise over equal dims', () => {
    const dims = [3, 5, 67];
    const gate = { data: spread(1005, 2, 12), dims }, up = { data: spread(1005, 3, 3), dims };
    const y = api.swiglu(gate, up);
    expect(y.dims).toEqual(dims);
    expectClose(y.data, Array.from(gate.data, (g, i) => siluRef(g) * up.data[i]), ATOL, RTOL, 'swiglu');
    // The bound bites: the roles of gate and up swapped.
    expect(firstMismatch(y.data, Array.from(gate.data, (g, i) => siluRef(up.data[i]) * g), ATOL, RTOL)).toBeGreaterThanOrEqual(0);
    expectClose(api.swiglu(gate.data, up.data).data, y.data, 0, 0, 'bare arrays');
    const edges = api.swiglu(Float32Array.from([-100, NaN, 5]), Float32Array.from([2, 1, NaN])).data;
    expect(Object.is(edges[0], -0)).toBe(true);
    expect(edges[1]).toBeNaN();
    expect(edges[2]).toBeNaN();
  });

  it('names the argument in every error', () => {
    publicError(() => api.silu([1, 2] as never), 'TypeError', 'x');
    publicError(() => api.silu({ data: new Float32Array(3), dims: [4] }), 'RangeError', 'x');
    publicError(() => api.silu(detachedFloat32(2)), 'TypeError', 'x');
    publicError(() => api.swiglu(new Float64Array(3) as never, new Float32Array(3)), 'TypeError', 'gate');
    publicError(() => api.swiglu(new Float32Array(3), null as never), 'TypeError', 'up');
    publicError(() => api.swiglu(new Float32Array(3), new Float32Array(4)), 'RangeError', 'up');
    publicError(() => api.swiglu({ data: new Float32Array(6), dims: [2, 3] }, { data: new Float32Array(6), dims: [3, 2] }), 'RangeError', 'up');
  });
});

describe.skipIf(!nativeAvailable)('silu and swiglu: native against JS', () => {
  it('agree on every kernel set within 1e-6 relative (the exp kernels differ; measured 3.3e-7)', () => {
    const gate = spread(4099, 4, 30), up = spread(4099, 5, 2);
    api.useBackend('js');
    const silu = api.silu(gate).data, swiglu = api.swiglu(gate, up).data;
    api.useBackend('native');
    try {
      for (const isa of api.backendInfo().simdSupported) {
        expect(api.setSimd(isa)).toBe(true);
        expectClose(api.silu(gate).data, silu, ATOL, RTOL_NATIVE_JS, `silu ${isa}`);
        expectClose(api.swiglu(gate, up).data, swiglu, ATOL, RTOL_NATIVE_JS, `swiglu ${isa}`);
      }
    } finally {
      api.setSimd(api.backendInfo().simdSupported[0]);
    }
  });
});

const raw = loaded.binding as Binding | null;
describe.skipIf(!raw)('raw binding: silu, swiglu', () => {
  it('refuses non-Float32Array, detached and short arguments with a TypeError or RangeError', () => {
    const silu = raw!.silu as (...a: unknown[]) => void, swiglu = raw!.swiglu as (...a: unknown[]) => void;
    silu(new Float32Array(5), new Float32Array(5));
    swiglu(new Float32Array(5), new Float32Array(5), new Float32Array(5));
    for (const [, make] of notFloat32) {
      cleanError(() => silu(make(), new Float32Array(5)));
      cleanError(() => silu(new Float32Array(5), make()));
      for (let slot = 0; slot < 3; slot++) {
        const args: unknown[] = [new Float32Array(5), new Float32Array(5), new Float32Array(5)];
        args[slot] = make();
        cleanError(() => swiglu(...args));
      }
    }
    cleanError(() => silu(detachedFloat32(5), new Float32Array(5)), 'TypeError');
    cleanError(() => silu(new Float32Array(5), new Float32Array(4)), 'RangeError');
    cleanError(() => swiglu(new Float32Array(5), new Float32Array(4), new Float32Array(5)), 'RangeError');
    cleanError(() => swiglu(new Float32Array(5), new Float32Array(5), new Float32Array(4)), 'RangeError');
    cleanError(() => swiglu(new Float32Array(5), detachedFloat32(5), new Float32Array(5)), 'TypeError');
  });
});
