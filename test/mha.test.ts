import { expect, it } from 'vitest';
import { api, forEachBackend } from './helpers/backends';
import { layerRef, randomWeights, type LayerSpec } from './helpers/layers';
import { expectClose, firstMismatch, randomArray } from './helpers/oracle';

// float32 storage, float64 reference: projections sum dIn terms, attention averages values, so
// errors stay near a few float32 ulps of O(1) results.
// Worst errors measured against the float64 layer on every kernel set (avx512, avx2, scalar;
// NODE_ATTENTION_ERROR_LOG, helpers/oracle.ts): native 1.1e-6 absolute (|y| < 1) and 6.2e-7
// relative (|y| >= 1), JS 1.4e-7 / 1.5e-7. Bounds ~4x the native worst.
const ATOL = 4e-6, RTOL = 2.5e-6;

const specs: Record<string, LayerSpec> = {
  'MHA with biases and wo': { dIn: 24, numHeads: 4, numKVHeads: 4, headDim: 6, dOut: 20, biases: true },
  'MHA without biases or wo': { dIn: 24, numHeads: 4, numKVHeads: 4, headDim: 6, dOut: 0, biases: false },
  'MHA with wo, no biases': { dIn: 16, numHeads: 2, numKVHeads: 2, headDim: 8, dOut: 16, biases: false },
  'GQA 8 heads over 2 kv heads': { dIn: 32, numHeads: 8, numKVHeads: 2, headDim: 4, dOut: 32, biases: true },
  'MQA (1 kv head), odd head size': { dIn: 21, numHeads: 3, numKVHeads: 1, headDim: 5, dOut: 7, biases: true },
};

function input(B: number, S: number, dIn: number, seed: number) {
  return { data: randomArray(B * S * dIn, seed), dims: [B, S, dIn] };
}

forEachBackend('MultiHeadAttention', () => {
  for (const [title, spec] of Object.entries(specs)) {
    for (const causal of [true, false]) {
      it(`${title}, ${causal ? 'causal' : 'non-causal'}: matches the float64 layer`, () => {
        const w = randomWeights(spec);
        const layer = new api.MultiHeadAttention({ numHeads: spec.numHeads, numKVHeads: spec.numKVHeads, causal }, w);
        const B = 2, S = 7, x = input(B, S, spec.dIn, 11);
        const y = layer.forward(x);
        const dOut = spec.dOut || spec.numHeads * spec.headDim;
        expect(y.dims).toEqual([B, S, dOut]);
        expect(layer.dOut).toBe(dOut);
        expect(layer.headDim).toBe(spec.headDim);
        expectClose(y.data, layerRef(spec, w, x.data, B, S, { causal }), ATOL, RTOL);
      });
    }
  }

  it('defaults: numKVHeads = numHeads, causal, scale 1/sqrt(headDim); a custom scale is used', () => {
    const spec = specs['MHA with biases and wo'];
    const w = randomWeights(spec);
    const layer = new api.MultiHeadAttention({ numHeads: 4 }, w);
    expect([layer.numKVHeads, layer.causal, layer.scale]).toEqual([4, true, 1 / Math.sqrt(6)]);
    const x = input(1, 5, spec.dIn, 3);
    expectClose(layer.forward(x).data, layerRef(spec, w, x.data, 1, 5), ATOL, RTOL);
    const scaled = new api.MultiHeadAttention({ numHeads: 4, scale: 0.9 }, w);
    expectClose(scaled.forward(x).data, layerRef(spec, w, x.data, 1, 5, { scale: 0.9 }), ATOL, RTOL);
    // The tolerance bites: a layer whose scale is 10% off fails the same check.
    const off = new api.MultiHeadAttention({ numHeads: 4, scale: 0.99 }, w);
    expect(firstMismatch(off.forward(x).data, layerRef(spec, w, x.data, 1, 5, { scale: 0.9 }), ATOL, RTOL)).toBeGreaterThanOrEqual(0);
  });

  it('equals composing the public linear and attention ops', () => {
    const spec = specs['GQA 8 heads over 2 kv heads'];
    const w = randomWeights(spec);
    const layer = new api.MultiHeadAttention({ numHeads: 8, numKVHeads: 2 }, w);
    const x = input(2, 9, spec.dIn, 5);
    const q = api.linear(x, w.wq, w.bq), k = api.linear(x, w.wk, w.bk), v = api.linear(x, w.wv, w.bv);
    const { y: ctx } = api.attention(q, k, v, { qNumHeads: 8, kvNumHeads: 2, isCausal: true });
    const composed = api.linear(ctx, w.wo!, w.bo);
    expectClose(layer.forward(x).data, composed.data, 1e-5, 1e-5);
  });

  it('applies a boolean mask and a broadcast float mask over [B, numHeads, S, S]', () => {
    const spec = specs['MHA with biases and wo'];
    const w = randomWeights(spec);
    const layer = new api.MultiHeadAttention({ numHeads: 4, causal: false }, w);
    const B = 2, S = 5, x = input(B, S, spec.dIn, 8);
    const keep = new Uint8Array(S * S).map((_, n) => (n % S <= Math.floor(n / S) + 1 ? 1 : 0));
    const boolY = layer.forward(x, { attnMask: { data: keep, dims: [S, S] } });
    const boolRef = layerRef(spec, w, x.data, B, S, { causal: false, mask: (_b, _h, i, j) => (keep[i * S + j] ? 0 : -Infinity) });
    expectClose(boolY.data, boolRef, ATOL, RTOL);
    const bias = randomArray(4 * S * S, 9);
    const floatY = layer.forward(x, { attnMask: { data: bias, dims: [1, 4, S, S] } });
    const floatRef = layerRef(spec, w, x.data, B, S, { causal: false, mask: (_b, h, i, j) => bias[(h * S + i) * S + j] });
    expectClose(floatY.data, floatRef, ATOL, RTOL);
  });

  it('forwardAsync gives the same result as forward', async () => {
    const spec = specs['GQA 8 heads over 2 kv heads'];
    const layer = new api.MultiHeadAttention({ numHeads: 8, numKVHeads: 2 }, randomWeights(spec));
    const x = input(3, 6, spec.dIn, 21);
    const sync = layer.forward(x);
    const [a, b] = await Promise.all([layer.forwardAsync(x), layer.forwardAsync(x)]);
    expect(a.dims).toEqual(sync.dims);
    expect(Array.from(a.data)).toEqual(Array.from(sync.data));
    expect(Array.from(b.data)).toEqual(Array.from(sync.data));
  });

  it('does not modify x or the weights, and accepts subarray views', () => {
    const spec = specs['MQA (1 kv head), odd head size'];
    const w = randomWeights(spec);
    const wqCopy = w.wq.data.slice();
    const layer = new api.MultiHeadAttention({ numHeads: 3, numKVHeads: 1 }, w);
    const x = input(1, 4, spec.dIn, 2);
    const xCopy = x.data.slice();
    const expected = layer.forward(x).data;
    expect(x.data).toEqual(xCopy);
    expect(w.wq.data).toEqual(wqCopy);
    const padded = new Float32Array(x.data.length + 3);
    padded.set(x.data, 3);
    expect(layer.forward({ data: padded.subarray(3), dims: x.dims }).data).toEqual(expected);
  });

  it('keeps its own copy of the weights; weights backed by a SharedArrayBuffer are used in place', () => {
    const spec = specs['GQA 8 heads over 2 kv heads'];
    const w = randomWeights(spec);
    const config = { numHeads: spec.numHeads, numKVHeads: spec.numKVHeads };
    const layer = new api.MultiHeadAttention(config, w);
    const x = input(1, 5, spec.dIn, 19);
    const before = layer.forward(x).data;
    w.wq.data.fill(0);
    expect(layer.forward(x).data).toEqual(before);

    const shared = (t: { data: Float32Array; dims: number[] }) => {
      const data = new Float32Array(new SharedArrayBuffer(t.data.byteLength));
      data.set(t.data);
      return { data, dims: t.dims };
    };
    const fresh = randomWeights(spec);
    const sharedWeights = { ...fresh, wq: shared(fresh.wq) };
    const inPlace = new api.MultiHeadAttention(config, sharedWeights);
    const original = inPlace.forward(x).data;
    expectClose(original, layerRef(spec, fresh, x.data, 1, 5, {}), ATOL, RTOL);
    sharedWeights.wq.data.fill(0);
    const zeroed = { ...fresh, wq: { data: new Float32Array(fresh.wq.data.length), dims: fresh.wq.dims } };
    expectClose(inPlace.forward(x).data, layerRef(spec, zeroed, x.data, 1, 5, {}), ATOL, RTOL);
  });

  it('reads x.dims once, so a getter that changes them cannot desynchronize the call', () => {
    const spec = specs['MHA with biases and wo'];
    const layer = new api.MultiHeadAttention({ numHeads: 4 }, randomWeights(spec));
    const x = input(1, 2, spec.dIn, 4);
    let reads = 0;
    const shifty = { data: x.data, get dims() { return reads++ === 0 ? [1, 2, 24] : [1, 4, 24]; } };
    const y = layer.forward(shifty);
    expect(y.dims).toEqual([1, 2, 20]);
    expect(y.data).toEqual(layer.forward(x).data);
  });

  it('rejects wrong weight shapes, naming the weight and both shapes', () => {
    const spec = specs['MHA with biases and wo'];
    const w = randomWeights(spec);
    const make = (config: object, weights: object) => () => new api.MultiHeadAttention(config as never, weights as never);
    expect(make({ numHeads: 4 }, { ...w, wk: { data: new Float32Array(24 * 12), dims: [24, 12] } }))
      .toThrow(/Expected dims \[24, 24\] \(dIn = 24 from weights\.wq, numKVHeads \* headDim = 4 \* 6\) for weights\.wk but received dims \[24, 12\]/);
    expect(make({ numHeads: 4 }, { ...w, wv: { data: new Float32Array(23 * 24), dims: [23, 24] } })).toThrow(/weights\.wv but received dims \[23, 24\]/);
    expect(make({ numHeads: 4 }, { ...w, wo: { data: new Float32Array(20 * 20), dims: [20, 20] } })).toThrow(/for weights\.wo but received dims \[20, 20\]/);
    expect(make({ numHeads: 4 }, { ...w, bq: new Float32Array(23) })).toThrow(/Expected dims \[24\] .* for weights\.bq but received dims \[23\]/);
    expect(make({ numHeads: 4 }, { ...w, bo: new Float32Array(24) })).toThrow(/for weights\.bo but received dims \[24\]/);
    expect(make({ numHeads: 4 }, { wq: w.wq, wk: w.wk, wv: w.wv, bo: w.bo })).toThrow(/there is no weights\.wo/);
    expect(make({ numHeads: 5 }, w)).toThrow(/divisible by numHeads = 5 for weights\.wq but received dims \[24, 24\]/);
    expect(make({ numHeads: 4 }, { ...w, wq: { data: new Float32Array(24), dims: [24] } })).toThrow(/2-D dims .* for weights\.wq/);
    expect(make({ numHeads: 4 }, { wq: w.wq, wk: w.wk })).toThrow(TypeError);
    expect(make({ numHeads: 4 }, { ...w, wz: w.wq })).toThrow(/unknown option "wz"/);
  });

  it('rejects bad configs: non-dividing heads, bad counts, a non-finite scale', () => {
    const w = randomWeights(specs['GQA 8 heads over 2 kv heads']);
    const make = (config: object) => () => new api.MultiHeadAttention(config as never, w);
    expect(make({ numHeads: 8, numKVHeads: 3 })).toThrow(/Expected a divisor of numHeads = 8 for config\.numKVHeads but received 3/);
    expect(make({ numHeads: 0 })).toThrow(RangeError);
    expect(make({ numHeads: '8' })).toThrow(TypeError);
    expect(make({ numHeads: 8, numKVHeads: 2, scale: Number.NaN })).toThrow(/finite number for config\.scale/);
    expect(make({ numHeads: 8, numKVHeads: 2, causal: 1 })).toThrow(/boolean for config\.causal/);
    expect(() => new api.MultiHeadAttention(undefined as never, w)).toThrow(/for config/);
  });

  it('rejects a wrong input: dims, rank, options, mask', () => {
    const spec = specs['MHA with biases and wo'];
    const layer = new api.MultiHeadAttention({ numHeads: 4 }, randomWeights(spec));
    expect(() => layer.forward(input(1, 3, 23, 1))).toThrow(/Expected dims \[B, S, 24\] .* for x but received dims \[1, 3, 23\]/);
    expect(() => layer.forward({ data: new Float32Array(24), dims: [1, 24] })).toThrow(/for x but received dims \[1, 24\]/);
    expect(() => layer.forward(input(1, 3, 24, 1), { cahce: null } as never)).toThrow(/unknown option "cahce"/);
    expect(() => layer.forward(input(1, 3, 24, 1), { cache: {} as never })).toThrow(/Expected a KVCache for opts\.cache/);
    expect(() => layer.forward(input(1, 3, 24, 1), { attnMask: { data: new Uint8Array(4 * 4), dims: [4, 4] } })).toThrow(/opts\.attnMask/);
  });

  it('forwardAsync rejects (does not throw) on bad arguments', async () => {
    const layer = new api.MultiHeadAttention({ numHeads: 4 }, randomWeights(specs['MHA with biases and wo']));
    const pending = layer.forwardAsync(input(1, 3, 23, 1));
    await expect(pending).rejects.toThrow(/for x but received dims \[1, 3, 23\]/);
  });
});
