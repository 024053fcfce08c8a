import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { api, forEachBackend, nativeAvailable } from './helpers/backends';
import { layerRef, randomWeights, sliceSeq, type LayerSpec } from './helpers/layers';
import { expectClose, randomArray } from './helpers/oracle';

// Worst errors measured against the float64 layer on every kernel set (avx512, avx2, scalar;
// NODE_ATTENTION_ERROR_LOG, helpers/oracle.ts): native 5.4e-7 absolute (|y| < 1) and 3.4e-7
// relative (|y| >= 1), JS 1.2e-7 / 1.1e-7. Bounds ~4x the native worst.
const ATOL = 2e-6, RTOL = 1.5e-6;
// Decoding through the cache against one full forward: native 4.8e-7 at worst (the split-key
// decode sums in another order), JS bit-identical. Bound ~4x.
const DECODE_ATOL = 2e-6;

const specs: Record<string, LayerSpec> = {
  MHA: { dIn: 24, numHeads: 4, numKVHeads: 4, headDim: 6, dOut: 24, biases: true },
  'GQA 8/2': { dIn: 32, numHeads: 8, numKVHeads: 2, headDim: 4, dOut: 16, biases: true },
  MQA: { dIn: 20, numHeads: 4, numKVHeads: 1, headDim: 5, dOut: 0, biases: false },
};

function setup(spec: LayerSpec, opts: { causal?: boolean; maxSeqLen?: number; batch?: number } = {}) {
  const w = randomWeights(spec, 7);
  const layer = new api.MultiHeadAttention({ numHeads: spec.numHeads, numKVHeads: spec.numKVHeads, causal: opts.causal ?? true }, w);
  const cache = new api.KVCache({ batch: opts.batch ?? 2, numKVHeads: spec.numKVHeads, headDim: spec.headDim, maxSeqLen: opts.maxSeqLen ?? 16 });
  return { w, layer, cache };
}

/** Positions [from, to) of x (B, T, dIn) as a [B, to - from, dIn] tensor. */
function chunk(x: Float32Array, B: number, T: number, dIn: number, from: number, to: number) {
  return { data: sliceSeq(x, B, T, dIn, from, to), dims: [B, to - from, dIn] };
}

forEachBackend('KVCache', () => {
  for (const [title, spec] of Object.entries(specs)) {
    it(`${title}: prefill + one token at a time equals one full causal forward (max abs err <= 2e-6)`, () => {
      const { layer, cache } = setup(spec);
      const B = 2, T = 11, P = 4, x = randomArray(B * T * spec.dIn, 31);
      const full = layer.forward({ data: x, dims: [B, T, spec.dIn] });
      const width = full.dims[2];
      const steps = [layer.forward(chunk(x, B, T, spec.dIn, 0, P), { cache })];
      expect(cache.length).toBe(P);
      for (let t = P; t < T; t++) {
        steps.push(layer.forward(chunk(x, B, T, spec.dIn, t, t + 1), { cache }));
        expect(cache.length).toBe(t + 1);
      }
      let from = 0;
      for (const step of steps) {
        const S = step.dims[1];
        expectClose(step.data, sliceSeq(full.data, B, T, width, from, from + S), DECODE_ATOL, 0, `positions ${from}..${from + S}`);
        from += S;
      }
    });
  }

  it('non-causal with a cache: the new queries see every cached and new position', () => {
    const spec = specs['GQA 8/2'];
    const { w, layer, cache } = setup(spec, { causal: false });
    const B = 2, T = 9, x = randomArray(B * T * spec.dIn, 4);
    layer.forward(chunk(x, B, T, spec.dIn, 0, 5), { cache });
    const y = layer.forward(chunk(x, B, T, spec.dIn, 5, 9), { cache });
    const ref = layerRef(spec, w, x, B, T, { causal: false });
    expectClose(y.data, sliceSeq(ref, B, T, spec.dOut, 5, 9), ATOL, RTOL);
  });

  it('a mask over [B, numHeads, S, past + S] applies to cached positions too', () => {
    const spec = specs.MHA;
    const { w, layer, cache } = setup(spec, { causal: false });
    const B = 2, T = 7, past = 4, S = 3, x = randomArray(B * T * spec.dIn, 6);
    layer.forward(chunk(x, B, T, spec.dIn, 0, past), { cache });
    const keep = new Uint8Array(B * T).map((_, n) => ((n % T) % 3 === 1 ? 0 : 1));
    const y = layer.forward(chunk(x, B, T, spec.dIn, past, T), { cache, attnMask: { data: keep, dims: [B, 1, 1, T] } });
    const ref = layerRef(spec, w, x, B, T, { causal: false, mask: (b, _h, _i, j) => (keep[b * T + j] ? 0 : -Infinity) });
    expectClose(y.data, sliceSeq(ref, B, T, spec.dOut, past, T), ATOL, RTOL);
    expect(() => layer.forward(chunk(x, B, T, spec.dIn, 0, 1), { cache, attnMask: { data: new Uint8Array(B * (T + 2)), dims: [B, 1, 1, T + 2] } }))
      .toThrow(/opts\.attnMask/);
  });

  it('holds the projected keys and values at [batch, numKVHeads, length, headDim]', () => {
    const spec = specs['GQA 8/2'];
    const { w, layer, cache } = setup(spec);
    const B = 2, S = 3, x = { data: randomArray(B * S * spec.dIn, 8), dims: [B, S, spec.dIn] };
    layer.forward(x, { cache });
    const { key, value } = cache.snapshot();
    expect(key.dims).toEqual([B, 2, S, 4]);
    const k = api.linear(x, w.wk, w.bk).data, v = api.linear(x, w.wv, w.bv).data;
    const expectedKey = new Float32Array(key.data.length), expectedValue = new Float32Array(key.data.length);
    for (let b = 0; b < B; b++) for (let h = 0; h < 2; h++) for (let t = 0; t < S; t++) for (let d = 0; d < 4; d++) {
      expectedKey[((b * 2 + h) * S + t) * 4 + d] = k[(b * S + t) * 8 + h * 4 + d];
      expectedValue[((b * 2 + h) * S + t) * 4 + d] = v[(b * S + t) * 8 + h * 4 + d];
    }
    expectClose(key.data, expectedKey, 1e-6, 1e-6);
    expectClose(value.data, expectedValue, 1e-6, 1e-6);
  });

  it('an append past maxSeqLen throws ERR_ATTN_CACHE_FULL and changes nothing', async () => {
    const spec = specs.MHA;
    const { layer, cache } = setup(spec, { maxSeqLen: 8 });
    const B = 2, x = randomArray(B * 9 * spec.dIn, 12);
    layer.forward(chunk(x, B, 9, spec.dIn, 0, 6), { cache });
    const before = cache.snapshot();
    const tooMany = chunk(x, B, 9, spec.dIn, 6, 9);
    expect(() => layer.forward(tooMany, { cache })).toThrow(expect.objectContaining({
      name: 'RangeError', code: 'ERR_ATTN_CACHE_FULL', message: expect.stringMatching(/at most 2 new positions \(the cache holds 6 of maxSeqLen 8\)/),
    }));
    await expect(layer.forwardAsync(tooMany, { cache })).rejects.toThrow(RangeError);
    expect(cache.length).toBe(6);
    expect(cache.snapshot()).toEqual(before);
    layer.forward(chunk(x, B, 9, spec.dIn, 6, 8), { cache });
    expect(cache.length).toBe(8);
    expect(() => layer.forward(chunk(x, B, 9, spec.dIn, 8, 9), { cache })).toThrow(/at most 0 new positions/);
  });

  it('truncate then continue equals recomputing the new sequence', () => {
    const spec = specs['GQA 8/2'];
    const { layer, cache } = setup(spec);
    const B = 2, T = 8, dIn = spec.dIn;
    const first = randomArray(B * T * dIn, 40), second = first.slice();
    second.set(randomArray(dIn, 41), (0 * T + 5) * dIn);  // batch 0 diverges from position 5 on
    second.set(randomArray(dIn, 42), (1 * T + 6) * dIn);
    layer.forward(chunk(first, B, T, dIn, 0, T), { cache });
    cache.truncate(5);
    expect(cache.length).toBe(5);
    const tail = layer.forward(chunk(second, B, T, dIn, 5, T), { cache });
    const full = layer.forward({ data: second, dims: [B, T, dIn] });
    expectClose(tail.data, sliceSeq(full.data, B, T, spec.dOut, 5, T), DECODE_ATOL, 0, 'after truncate');
    expect(cache.length).toBe(T);
  });

  it('reset() empties the cache; the next call behaves as on a fresh one', () => {
    const spec = specs.MQA;
    const { layer, cache } = setup(spec);
    const B = 2, x = { data: randomArray(B * 5 * spec.dIn, 50), dims: [B, 5, spec.dIn] };
    const fresh = layer.forward(x, { cache });
    layer.forward(chunk(x.data, B, 5, spec.dIn, 0, 2), { cache });
    cache.reset();
    expect(cache.length).toBe(0);
    expect(layer.forward(x, { cache }).data).toEqual(fresh.data);
  });

  it('length is read-only; truncate checks its argument', () => {
    const { layer, cache } = setup(specs.MHA);
    layer.forward({ data: randomArray(2 * 3 * 24, 1), dims: [2, 3, 24] }, { cache });
    expect(() => { (cache as { length: number }).length = 0; }).toThrow(TypeError);
    expect(cache.length).toBe(3);
    expect(() => cache.truncate(4)).toThrow(/Expected an integer in \[0, 3\] \(the cache length\) for n but received 4/);
    expect(() => cache.truncate(-1)).toThrow(RangeError);
    expect(() => cache.truncate(1.5)).toThrow(RangeError);
    expect(() => cache.truncate('1' as never)).toThrow(TypeError);
    expect(cache.length).toBe(3);
    cache.truncate(3);
    cache.truncate(0);
    expect(cache.length).toBe(0);
  });

  it('a cache whose batch, numKVHeads or headDim disagrees is a RangeError and stays unchanged', () => {
    const spec = specs['GQA 8/2'];
    const { layer } = setup(spec);
    const x = { data: randomArray(2 * 2 * spec.dIn, 3), dims: [2, 2, spec.dIn] };
    for (const config of [{ batch: 1, numKVHeads: 2, headDim: 4 }, { batch: 2, numKVHeads: 4, headDim: 4 }, { batch: 2, numKVHeads: 2, headDim: 8 }]) {
      const cache = new api.KVCache({ ...config, maxSeqLen: 8 });
      expect(() => layer.forward(x, { cache })).toThrow(/Expected a KVCache with batch 2, numKVHeads 2, headDim 4 .* for opts\.cache/);
      expect(cache.length).toBe(0);
    }
  });

  it('validates its config', () => {
    expect(() => new api.KVCache({ batch: 1, numKVHeads: 2, headDim: 4 } as never)).toThrow(/config\.maxSeqLen/);
    expect(() => new api.KVCache({ batch: 0, numKVHeads: 2, headDim: 4, maxSeqLen: 8 })).toThrow(/for config\.batch but received 0/);
    expect(() => new api.KVCache({ batch: 1, numKVHeads: 2, headDim: 4, maxSeqLen: 2 ** 31 })).toThrow(RangeError);
    expect(() => new api.KVCache({ batch: 1, numKVHeads: 2, headDim: 4, maxSeqLen: 8, extra: 1 } as never)).toThrow(/unknown option "extra"/);
  });

  it('dispose() frees it once; any later use is a clear error', async () => {
    const spec = specs.MHA;
    const { layer, cache } = setup(spec);
    const x = { data: randomArray(2 * 24, 2), dims: [2, 1, 24] };
    layer.forward(x, { cache });
    cache.dispose();
    cache.dispose();
    expect(cache.disposed).toBe(true);
    // README: using an object after dispose() is an Error with code ERR_ATTN_INVALID_VALUE.
    const disposedError = (err: unknown) => {
      expect(err, 'expected a throw').toBeInstanceOf(Error);
      expect((err as Error).constructor.name).toBe('Error');
      expect((err as Error & { code?: string }).code).toBe('ERR_ATTN_INVALID_VALUE');
      expect((err as Error).message).toMatch(/KVCache has been disposed/);
    };
    const thrown = (call: () => unknown) => { try { call(); } catch (err) { return err; } return undefined; };
    for (const use of [() => layer.forward(x, { cache }), () => cache.truncate(0), () => cache.reset(), () => cache.snapshot()]) disposedError(thrown(use));
    disposedError(await layer.forwardAsync(x, { cache }).then(() => undefined, (err: unknown) => err));
    // A model's decoder disposes its caches: the same error after decoder.dispose().
    const decoder = api.GPT.random({ vocab_size: 10, n_positions: 8, n_embd: 8, n_layer: 1, n_head: 2 }, 1).decoder(4);
    decoder.append([1]);
    decoder.dispose();
    disposedError(thrown(() => decoder.append([2])));
    disposedError(thrown(() => decoder.truncate(0)));
  });

  it('forwardAsync through the cache equals forward through another cache', async () => {
    const spec = specs['GQA 8/2'];
    const { layer, cache } = setup(spec);
    const other = new api.KVCache({ batch: 2, numKVHeads: 2, headDim: 4, maxSeqLen: 16 });
    const B = 2, T = 6, x = randomArray(B * T * spec.dIn, 60);
    for (const [from, to] of [[0, 3], [3, 4], [4, 6]]) {
      const step = chunk(x, B, T, spec.dIn, from, to);
      const [a, b] = [await layer.forwardAsync(step, { cache }), layer.forward(step, { cache: other })];
      expect(Array.from(a.data)).toEqual(Array.from(b.data));
    }
    expect(cache.snapshot()).toEqual(other.snapshot());
  });
});

// Concurrency policy: a native cache serves one forwardAsync at a time; any other use of it while
// one is pending throws (see native/binding/mha_binding.cc). The JS backend finishes each call
// before returning, so calls never overlap there.
describe.skipIf(!nativeAvailable)('KVCache [native only]', () => {
  it('rejects a second use of a cache while a forwardAsync on it is pending', async () => {
    api.useBackend('native');
    const spec = specs.MHA;
    const { layer, cache } = setup(spec);
    const x = { data: randomArray(2 * 2 * 24, 5), dims: [2, 2, 24] };
    const first = layer.forwardAsync(x, { cache });
    await expect(layer.forwardAsync(x, { cache })).rejects.toThrow(/in use by a pending forwardAsync call/);
    expect(() => layer.forward(x, { cache })).toThrow(/pending forwardAsync/);
    expect(() => cache.truncate(0)).toThrow(/pending forwardAsync/);
    expect(() => cache.dispose()).toThrow(/pending forwardAsync/);
    await first;
    expect(cache.length).toBe(2);
    layer.forward(x, { cache });
    expect(cache.length).toBe(4);
  });

  it('forwardAsync works on its own copy of x and the mask, and refuses weights a caller could detach', async () => {
    api.useBackend('native');
    const spec = specs['GQA 8/2'];
    const { layer, cache } = setup(spec);
    const x = { data: randomArray(2 * 4 * spec.dIn, 70), dims: [2, 4, spec.dIn] };
    const mask = { data: randomArray(4 * 4, 71), dims: [4, 4] };
    const expected = layer.forward(x, { attnMask: mask }).data;
    const victim = { data: x.data.slice(), dims: x.dims }, victimMask = { data: mask.data.slice(), dims: mask.dims };
    const running = layer.forwardAsync(victim, { cache, attnMask: victimMask });
    structuredClone([victim.data.buffer, victimMask.data.buffer], { transfer: [victim.data.buffer, victimMask.data.buffer] });
    expect((await running).data).toEqual(expected);
    expect(cache.length).toBe(4);

    const addon = createRequire(import.meta.url)(api.backendInfo().binaryPath!) as Record<string, new (...args: unknown[]) => Record<string, (...args: unknown[]) => Promise<Float32Array>>>;
    const params = Float64Array.of(8, 8, 2, 2, 4, 1, 0.5, 0); // wire.mha, rotaryDim 0
    const shared = () => new Float32Array(new SharedArrayBuffer(64 * 4));
    const raw = new addon.MultiHeadAttention(params, shared(), shared(), shared(), null, null, null, null, null);
    const y = await raw.forwardAsync(new Float32Array(8), 1, 1, null, null, null);
    expect(y).toBeInstanceOf(Float32Array);
    expect(y).toHaveLength(8);
    // Weights are read by every call: an async call refuses any a caller could transfer away.
    const unpinned = new addon.MultiHeadAttention(params, new Float32Array(64), shared(), shared(), null, null, null, null, null);
    expect(() => unpinned.forwardAsync(new Float32Array(8), 1, 1, null, null, null)).toThrow(/SharedArrayBuffer-backed Float32Array for wq/);
  });

  it('a cache and a layer from different backends do not mix', () => {
    const spec = specs.MHA;
    const w = randomWeights(spec);
    const config = { batch: 1, numKVHeads: 4, headDim: 6, maxSeqLen: 4 };
    const x = { data: randomArray(24, 1), dims: [1, 1, 24] };
    api.useBackend('js');
    const jsCache = new api.KVCache(config);
    const jsLayer = new api.MultiHeadAttention({ numHeads: 4 }, w);
    api.useBackend('native');
    const nativeCache = new api.KVCache(config);
    const nativeLayer = new api.MultiHeadAttention({ numHeads: 4 }, w);
    expect([jsCache.backend, nativeCache.backend, jsLayer.backend, nativeLayer.backend]).toEqual(['js', 'native', 'js', 'native']);
    expect(() => nativeLayer.forward(x, { cache: jsCache })).toThrow(/created with the native backend \(like this layer\) for opts\.cache but received one created with the js backend/);
    expect(() => jsLayer.forward(x, { cache: nativeCache })).toThrow(TypeError);
    expect(jsCache.length + nativeCache.length).toBe(0);
    // Each object keeps its own backend whichever is active now.
    expect(jsLayer.forward(x, { cache: jsCache }).data).toEqual(jsLayer.forward(x).data);
    expect(jsCache.length).toBe(1);
  });

  it('the raw binding re-checks sizes and never touches memory out of bounds', () => {
    const addon = createRequire(import.meta.url)(api.backendInfo().binaryPath!) as Record<string, new (...args: unknown[]) => Record<string, (...args: unknown[]) => unknown>>;
    const params = Float64Array.of(8, 8, 2, 1, 4, 1, 0.5, 0); // wire.mha, rotaryDim 0
    const w = (n: number) => new Float32Array(n);
    const layer = new addon.MultiHeadAttention(params, w(64), w(32), w(32), w(64), null, null, null, null);
    const cache = new addon.KVCache(1, 1, 4, 4);
    const x = w(2 * 8), y = w(2 * 8);
    expect(() => layer.forward(x, 1, 2, null, null, null, w(15))).toThrow(/y to hold at least 16/);
    expect(() => layer.forward(w(15), 1, 2, null, null, null, y)).toThrow(/x to hold at least 16/);
    expect(() => layer.forward(x, 1, 2, { length: 0 }, null, null, y)).toThrow(/native KVCache for cache/);
    expect(() => layer.forward(x, 1, 2, null, w(3), Float64Array.of(0, 0, 2, 2), y)).toThrow(/mask to hold at least/);
    expect(() => layer.forward(x, 1, 2, null, w(8), Float64Array.of(0, 0, 4, 3), y)).toThrow(/mask length in \[1, 2\]/);
    expect(() => new addon.MultiHeadAttention(params, w(63), w(32), w(32), w(64), null, null, null, null)).toThrow(/wq to hold at least 64/);
    expect(() => new addon.MultiHeadAttention(Float64Array.of(8, 8, 3, 2, 4, 1, 1, 0), w(96), w(64), w(64), w(96), null, null, null, null)).toThrow(/divisible/);
    expect(() => new addon.KVCache(1, 0, 4, 4)).toThrow(RangeError);
    expect(() => new addon.KVCache(2 ** 40, 2 ** 40, 4, 4)).toThrow(/overflows/);
    expect(() => new addon.KVCache(1, 1, 4, 2 ** 31)).toThrow(/maxSeqLen <= 2147483647/);
    expect(() => new addon.MultiHeadAttention(new Float64Array(6), w(64), w(32), w(32))).toThrow(/Float64Array of length 8 for params/);
    expect(() => new addon.MultiHeadAttention(Float64Array.of(8, 8, Number.NaN, 1, 4, 1, 1, 0), w(64), w(32), w(32))).toThrow(/numHeads/);
    expect(() => new addon.MultiHeadAttention(params, w(64), null, w(32))).toThrow(/Float32Array for wk/);
    expect(() => new addon.MultiHeadAttention(Float64Array.of(8, 9, 2, 1, 4, 1, 1, 0), w(64), w(32), w(32))).toThrow(/dOut == numHeads\*headDim/);
    expect(() => layer.forward(Array.from(x), 1, 2, null, null, null, y)).toThrow(/Float32Array for x/);
    expect(() => layer.forward(x, 2 ** 40, 2 ** 40, null, null, null, y)).toThrow(/overflows/);
    expect(() => layer.forward(x, -1, 2, null, null, null, y)).toThrow(RangeError);
    expect(() => layer.forward(x, 1, 2, null, w(8), null, y)).toThrow(/Float64Array of length 4 for maskStrides/);
    expect(() => layer.forward(x, 1, 2, null, w(8), Float64Array.of(2 ** 60, 0, 0, 1), y)).toThrow(RangeError);
    layer.forward(x, 1, 2, cache, null, null, y);
    layer.forward(x, 1, 2, cache, null, null, y);
    expect(cache.length).toBe(4);
    expect(() => layer.forward(x, 1, 1, cache, null, null, y)).toThrow(/at most 0 new positions/);
    expect(() => layer.forward(x, 2, 1, new addon.KVCache(1, 1, 4, 4), null, null, y)).toThrow(/cache of batch 2/);
    cache.dispose();
    expect(() => layer.forward(x, 1, 2, cache, null, null, y)).toThrow(/disposed/);
    expect(() => cache.read(w(0), w(0))).toThrow(/disposed/);
  });
});
