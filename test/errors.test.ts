// Hostile and careless input across the public API, on both backends: every bad argument is a
// TypeError (wrong kind) or RangeError (wrong size or value) in the one message format
//   Expected <what> for <argument> but received <what it got>
// with a stable `code`; failed calls leave outputs and inputs untouched; data is never mutated;
// odd-but-valid inputs (subarrays, SharedArrayBuffer) work. attention's per-option errors live in
// test/attention.test.ts; this file covers the cross-cutting cases.
import { describe, expect, it } from 'vitest';
import { api, forEachBackend, nativeAvailable } from './helpers/backends';
import { badSizes, cleanError, detachedFloat32, notFloat32, publicError, sharedFloat32, type ErrorKind } from './helpers/hostile';
import { expectClose, matmulRef, randomArray } from './helpers/oracle';

const t = (dims: number[], seed = 1) => ({ data: randomArray(dims.reduce((p, d) => p * d, 1), seed), dims });

type Case = [string, () => unknown, ErrorKind, string, RegExp?];

const dotCases: Case[] = [
  ...notFloat32.map(([label, make]): Case => [`a is ${label}`, () => api.dot(make() as Float32Array, new Float32Array(3)), 'TypeError', 'a']),
  ...notFloat32.map(([label, make]): Case => [`b is ${label}`, () => api.dot(new Float32Array(3), make() as Float32Array), 'TypeError', 'b']),
  ['lengths differ', () => api.dot(new Float32Array(3), new Float32Array(4)), 'RangeError', 'b', /length 3 \(the length of a\) for b but received length 4/],
  ['a tensor instead of an array', () => api.dot(t([3]) as unknown as Float32Array, new Float32Array(3)), 'TypeError', 'a', /but received object with keys \{data, dims\}/],
];

const a22 = () => t([2, 2], 1), b22 = () => t([2, 2], 2);
const matmulCases: Case[] = [
  ...notFloat32.filter(([l]) => l !== 'an object').map(([label, make]): Case => [`a is ${label}`, () => api.matmul(make() as Float32Array, b22()), 'TypeError', 'a']),
  ['a has no dims', () => api.matmul({ data: new Float32Array(4) } as never, b22()), 'TypeError', 'a'],
  ['a.data is a Float64Array', () => api.matmul({ data: new Float64Array(4), dims: [2, 2] } as never, b22()), 'TypeError', 'a.data', /Float32Array for a\.data but received Float64Array of length 4/],
  ['a.data is a plain array', () => api.matmul({ data: [1, 2, 3, 4], dims: [2, 2] } as never, b22()), 'TypeError', 'a.data'],
  ['a.dims is a string', () => api.matmul({ data: new Float32Array(4), dims: '2,2' } as never, b22()), 'TypeError', 'a.dims'],
  ['a.dims is a DataView', () => api.matmul({ data: new Float32Array(4), dims: new DataView(new ArrayBuffer(8)) } as never, b22()), 'TypeError', 'a.dims'],
  ...badSizes.filter((d) => typeof d === 'number').map((d): Case =>
    [`a.dims holds ${String(d)}`, () => api.matmul({ data: new Float32Array(4), dims: [d as number, 2] }, b22()), 'RangeError', 'a.dims', /(positive integers|at most 2\^53 - 1 elements) for a\.dims/]),
  ['a.dims holds 0', () => api.matmul({ data: new Float32Array(0), dims: [0, 2] }, b22()), 'RangeError', 'a.dims', /\(dim 0 is 0\)/],
  ['a.dims holds a string', () => api.matmul({ data: new Float32Array(4), dims: ['2', 2] } as never, b22()), 'RangeError', 'a.dims'],
  ['a.dims product beyond 2^53', () => api.matmul({ data: new Float32Array(4), dims: [2 ** 30, 2 ** 30, 2 ** 30] }, b22()), 'RangeError', 'a.dims', /at most 2\^53 - 1 elements/],
  ['a.data length != product of dims', () => api.matmul({ data: new Float32Array(5), dims: [2, 2] }, b22()), 'RangeError', 'a', /data of length 4 .* but received data of length 5/],
  ['a is rank 0', () => api.matmul({ data: new Float32Array(1), dims: [] }, b22()), 'RangeError', 'a', /rank >= 1/],
  ['inner dims differ', () => api.matmul(t([2, 3]), t([4, 2])), 'RangeError', 'b', /dims \[\.\.\., 3, n\] \(k = 3 .* but received dims \[4, 2\]/],
  ['inner dims differ with transB', () => api.matmul(t([2, 3]), t([2, 4]), { transB: true }), 'RangeError', 'b', /\[\.\.\., n, 3\].* with transB/],
  ['batch dims do not broadcast', () => api.matmul(t([2, 2, 3]), t([3, 3, 2])), 'RangeError', 'b', /broadcast/],
  ['more than 8 batch dims', () => api.matmul(t([1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2]), b22()), 'RangeError', 'a', /at most 8 batch dims/],
  ['opts is a number', () => api.matmul(a22(), b22(), 1 as never), 'TypeError', 'opts'],
  ['opts is an array', () => api.matmul(a22(), b22(), [] as never), 'TypeError', 'opts'],
  ['opts is null', () => api.matmul(a22(), b22(), null as never), 'TypeError', 'opts'],
  ['an unknown option', () => api.matmul(a22(), b22(), { transpose: true } as never), 'RangeError', 'opts', /unknown option "transpose"/],
  ['transA is 1', () => api.matmul(a22(), b22(), { transA: 1 } as never), 'TypeError', 'opts.transA'],
  ['transB is "true"', () => api.matmul(a22(), b22(), { transB: 'true' } as never), 'TypeError', 'opts.transB'],
  ['bias of the wrong length', () => api.matmul(a22(), b22(), { bias: new Float32Array(3) }), 'RangeError', 'opts.bias', /dims \[2\] \(the last output dim\)/],
  ['bias is 2-D', () => api.matmul(a22(), b22(), { bias: t([1, 2]) }), 'RangeError', 'opts.bias'],
  ['bias is a Float64Array', () => api.matmul(a22(), b22(), { bias: new Float64Array(2) } as never), 'TypeError', 'opts.bias'],
  ['out of the wrong length', () => api.matmul(a22(), b22(), { out: new Float32Array(5) }), 'RangeError', 'opts.out', /length 4 \(output dims \[2, 2\]\)/],
  ['out is a Float64Array', () => api.matmul(a22(), b22(), { out: new Float64Array(4) } as never), 'TypeError', 'opts.out'],
  ['out is a', () => { const a = a22(); return api.matmul(a, b22(), { out: a.data }); }, 'RangeError', 'opts.out', /does not overlap the inputs/],
  ['out overlaps b through a subarray', () => {
    const buffer = new Float32Array(8);
    return api.matmul(a22(), { data: buffer.subarray(0, 4), dims: [2, 2] }, { out: buffer.subarray(3, 7) });
  }, 'RangeError', 'opts.out', /overlaps an input/],
  ['a on a detached buffer', () => api.matmul({ data: detachedFloat32(4), dims: [2, 2] }, b22()), 'TypeError', 'a.data', /detached ArrayBuffer/],
];

const linearCases: Case[] = [
  ['x is null', () => api.linear(null as never, t([2, 3])), 'TypeError', 'x'],
  ['w is a bare Float32Array', () => api.linear(t([2, 2]), new Float32Array(4) as never), 'TypeError', 'w'],
  ['w is 1-D', () => api.linear(t([2, 2]), t([2])), 'RangeError', 'w', /dims \[in, out\] for w/],
  ['w is 3-D', () => api.linear(t([2, 2]), t([1, 2, 2])), 'RangeError', 'w'],
  ['w rows != last dim of x', () => api.linear(t([4, 3]), t([2, 5])), 'RangeError', 'w', /dims \[3, out\] \(in = 3, the last dim of x\) for w but received dims \[2, 5\]/],
  ['b of the wrong length', () => api.linear(t([2, 3]), t([3, 5]), t([4])), 'RangeError', 'b', /dims \[5\]/],
  ['b is a number', () => api.linear(t([2, 3]), t([3, 5]), 5 as never), 'TypeError', 'b'],
];

const runtimeCases: Case[] = [
  ['useBackend("gpu")', () => api.useBackend('gpu' as never), 'TypeError', 'name'],
  ['useBackend(1)', () => api.useBackend(1 as never), 'TypeError', 'name'],
  ['setNumThreads("2")', () => api.setNumThreads('2' as never), 'TypeError', 'n'],
  ...[0, -1, 1.5, NaN, Infinity, 4097].map((n): Case => [`setNumThreads(${n})`, () => api.setNumThreads(n), 'RangeError', 'n', /an integer in \[1, 4096\]/]),
  ['setSimd(1)', () => api.setSimd(1 as never), 'TypeError', 'isa'],
];

forEachBackend('argument errors', () => {
  for (const [group, cases] of [['dot', dotCases], ['matmul', matmulCases], ['linear', linearCases], ['runtime', runtimeCases]] as const) {
    it.each(cases)(`${group}: %s`, (_label, call, kind, name, message) => {
      const err = publicError(call, kind, name);
      if (message) expect(err.message).toMatch(message);
    });
  }

  it('names the element and type in messages about wrong kinds', () => {
    expect(publicError(() => api.dot(new Int32Array(3) as never, new Float32Array(3)), 'TypeError', 'a').message)
      .toBe('Expected Float32Array for a but received Int32Array of length 3');
    expect(publicError(() => api.matmul({ data: new Float32Array(6), dims: [2, 3] }, null as never), 'TypeError', 'b').message)
      .toMatch(/^Expected a Tensor \{data: Float32Array, dims\} or a Float32Array for b but received null$/);
  });

  it('leaves opts.out untouched when the call fails after out was checked', () => {
    const out = new Float32Array(4).fill(7);
    publicError(() => api.matmul(a22(), b22(), { out, bias: new Float32Array(3) }), 'RangeError', 'opts.bias');
    publicError(() => api.matmul(a22(), t([3, 2]), { out }), 'RangeError', 'b');
    expect(Array.from(out)).toEqual([7, 7, 7, 7]);
  });

  it('an output too large to allocate is a RangeError, not a crash', () => {
    const column = { data: new Float32Array(100_000), dims: [100_000, 1] };
    const row = { data: new Float32Array(100_000), dims: [1, 100_000] };
    cleanError(() => api.matmul(column, row), 'RangeError');
  });

  it('never mutates its inputs, on success or failure', () => {
    const a = t([3, 5], 3), b = t([5, 4], 4), bias = t([4], 5);
    const copies = [a, b, bias].map((x) => Float32Array.from(x.data));
    api.matmul(a, b, { bias });
    api.matmul(a, b, { transA: false, transB: false, bias, out: new Float32Array(12) });
    api.linear(a, b, bias);
    api.dot(a.data, a.data);
    cleanError(() => api.matmul(a, b, { bias: t([5]) }));
    [a, b, bias].forEach((x, i) => expect(x.data).toEqual(copies[i]));
  });

  it('reads inputs backed by a SharedArrayBuffer like ordinary ones, sync and async', async () => {
    const a = t([6, 7], 6), b = t([7, 5], 7);
    const shared = { data: sharedFloat32(a.data), dims: a.dims };
    const sharedB = { data: sharedFloat32(b.data), dims: b.dims };
    const out = sharedFloat32(new Float32Array(30));
    const result = api.matmul(shared, sharedB, { out });
    expect(result.data).toBe(out);
    expectClose(out, matmulRef(a.data, b.data, 6, 7, 5), 1e-5, 1e-4);
    expect(api.dot(sharedFloat32([1, 2, 3]), sharedFloat32([4, 5, 6]))).toBe(32);
    const q = { data: sharedFloat32(randomArray(2 * 3 * 4, 8)), dims: [1, 2, 3, 4] };
    const k = { data: sharedFloat32(randomArray(2 * 5 * 4, 9)), dims: [1, 2, 5, 4] };
    const y = api.attention(q, k, k).y;
    const plain = api.attention({ data: Float32Array.from(q.data), dims: q.dims }, { data: Float32Array.from(k.data), dims: k.dims }, { data: Float32Array.from(k.data), dims: k.dims }).y;
    expect(y.data).toEqual(plain.data);
    expect((await api.attentionAsync(q, k, k)).y.data).toEqual(plain.data);
  });

  it('reads subarrays at any byteOffset like copies', () => {
    for (let offset = 0; offset < 5; offset++) {
      const backing = randomArray(offset + 7 * 9 + 9 * 3 + 1, 10 + offset);
      const a = backing.subarray(offset, offset + 63), b = backing.subarray(offset + 63, offset + 63 + 27);
      const got = api.matmul({ data: a, dims: [7, 9] }, { data: b, dims: [9, 3] });
      const want = api.matmul({ data: Float32Array.from(a), dims: [7, 9] }, { data: Float32Array.from(b), dims: [9, 3] });
      expect(got.data).toEqual(want.data);
    }
  });
});

describe.skipIf(!nativeAvailable)('the binding re-checks what validation saw', () => {
  it('a tensor whose dims change between reads cannot make native read out of bounds', () => {
    // Validation sees [2, 3]; every later read says [3, 3], which the 6-element data cannot hold.
    api.useBackend('native');
    let reads = 0;
    const a = randomArray(6, 11), b = t([3, 2], 12);
    const shifty = { data: a, get dims() { return reads++ === 0 ? [2, 3] : [3, 3]; } };
    // The facade reads dims once and passes that snapshot on: the call sees [2, 3] throughout.
    const result = api.matmul(shifty, b);
    expect(reads).toBe(1);
    expect(result.dims).toEqual([2, 2]);
    // Three-term float32 dot products of values in [-1, 1]: the worst case 3u sum|a_i b_i| <= 5.4e-7.
    expectClose(result.data, matmulRef(a, b.data, 2, 3, 2), 6e-7, 0);
  });
});

// ---------------------------------------------------------------------------------------------
// Layers, GPT, heatmap and safetensors: every public class and function answers bad input cleanly.

const layerWeights = () => ({ wq: t([6, 8], 21), wk: t([6, 4], 22), wv: t([6, 4], 23), wo: t([8, 6], 24) });
const gptConfig = { vocab_size: 10, n_positions: 8, n_embd: 8, n_layer: 1, n_head: 2 };

forEachBackend('argument errors in layers and models', () => {
  const layerCases: Case[] = [
    ['KVCache(null)', () => new api.KVCache(null as never), 'TypeError', 'config'],
    ['KVCache without maxSeqLen', () => new api.KVCache({ batch: 1, numKVHeads: 1, headDim: 4 } as never), 'TypeError', 'config.maxSeqLen'],
    ['KVCache with an unknown key', () => new api.KVCache({ batch: 1, numKVHeads: 1, headDim: 4, maxSeqLen: 4, heads: 2 } as never), 'RangeError', 'config'],
    ['KVCache batch 0', () => new api.KVCache({ batch: 0, numKVHeads: 1, headDim: 4, maxSeqLen: 4 }), 'RangeError', 'config.batch'],
    ['KVCache headDim 1.5', () => new api.KVCache({ batch: 1, numKVHeads: 1, headDim: 1.5, maxSeqLen: 4 }), 'RangeError', 'config.headDim'],
    ['KVCache maxSeqLen 2^31', () => new api.KVCache({ batch: 1, numKVHeads: 1, headDim: 4, maxSeqLen: 2 ** 31 }), 'RangeError', 'config.maxSeqLen'],
    ['KVCache product beyond 2^53', () => new api.KVCache({ batch: 2 ** 20, numKVHeads: 2 ** 20, headDim: 2 ** 10, maxSeqLen: 2 ** 10 }), 'RangeError', 'config'],
    ['KVCache too large to allocate (8 TB)', () => new api.KVCache({ batch: 1, numKVHeads: 1, headDim: 2 ** 20, maxSeqLen: 2 ** 20 }), 'RangeError', 'config'],
    ['MultiHeadAttention(null config)', () => new api.MultiHeadAttention(null as never, layerWeights()), 'TypeError', 'config'],
    ['MultiHeadAttention numHeads 3', () => new api.MultiHeadAttention({ numHeads: 3, numKVHeads: 1 }, layerWeights()), 'RangeError', /config\.numHeads|weights\.wq/],
    ['MultiHeadAttention numKVHeads 3 of 2', () => new api.MultiHeadAttention({ numHeads: 2, numKVHeads: 3 }, layerWeights()), 'RangeError', 'config.numKVHeads'],
    ['MultiHeadAttention scale NaN', () => new api.MultiHeadAttention({ numHeads: 2, numKVHeads: 1, scale: NaN }, layerWeights()), 'RangeError', 'config.scale'],
    ['MultiHeadAttention without wk', () => new api.MultiHeadAttention({ numHeads: 2, numKVHeads: 1 }, { ...layerWeights(), wk: undefined } as never), 'TypeError', 'weights.wk'],
    ['MultiHeadAttention wv rows differ', () => new api.MultiHeadAttention({ numHeads: 2, numKVHeads: 1 }, { ...layerWeights(), wv: t([5, 4], 25) }), 'RangeError', 'weights.wv'],
    ['GPT.random(null)', () => api.GPT.random(null as never), 'TypeError', 'config'],
    ['GPT.random n_head 3', () => api.GPT.random({ ...gptConfig, n_head: 3 }), 'RangeError', 'config.n_head'],
    ['GPT.random seed "x"', () => api.GPT.random(gptConfig, 'x' as never), 'TypeError', 'seed'],
    ['GPT.fromWeights without tensors', () => api.GPT.fromWeights(gptConfig, {}), 'RangeError', 'weights'],
    ['attentionHeatmapSVG(null)', () => api.attentionHeatmapSVG(null as never), 'TypeError', 'weights'],
    ['attentionHeatmapSVG of a 1-D tensor', () => api.attentionHeatmapSVG(t([4])), 'RangeError', 'weights'],
  ];

  it.each(layerCases)('%s', (_label, call, kind, name) => {
    publicError(call, kind, typeof name === 'string' ? name : name);
  });

  it('layer forward, GPT forward/generate and decoders reject bad input', () => {
    const layer = new api.MultiHeadAttention({ numHeads: 2, numKVHeads: 1 }, layerWeights());
    publicError(() => layer.forward(null as never), 'TypeError', 'x');
    publicError(() => layer.forward(t([1, 2, 5])), 'RangeError', 'x');
    publicError(() => layer.forward(t([1, 2, 6]), { cache: {} as never }), 'TypeError', 'opts.cache');
    publicError(() => layer.forward(t([1, 2, 6]), { attnMask: t([3, 3]) }), 'RangeError', 'opts.attnMask');
    publicError(() => layer.forward(t([1, 2, 6]), { causal: false } as never), 'RangeError', 'opts');
    const gpt = api.GPT.random(gptConfig);
    publicError(() => gpt.forward([1, 2] as never), 'TypeError', 'tokens');
    publicError(() => gpt.forward(Int32Array.of(10)), 'RangeError', 'tokens[0]');
    publicError(() => gpt.forward(new Int32Array(9)), 'RangeError', 'tokens');
    publicError(() => gpt.generate(Int32Array.of(1), undefined as never), 'TypeError', 'opts');
    publicError(() => gpt.generate(Int32Array.of(1), { maxNewTokens: 1e9 }), 'RangeError', 'opts.maxNewTokens');
    publicError(() => gpt.attentionWeights(Int32Array.of(1), { layer: 5, head: 0 }), 'RangeError', 'opts.layer');
    publicError(() => gpt.decoder(0), 'RangeError', 'maxSeqLen');
    const decoder = gpt.decoder(4);
    publicError(() => decoder.append(new Int32Array(5)), 'RangeError', 'tokens');
    publicError(() => decoder.truncate(-1), 'RangeError', 'n');
    decoder.dispose();
  });

  it('safetensors I/O rejects non-path and non-tensor arguments with a TypeError', async () => {
    for (const call of [() => api.SafetensorsFile.open(5 as never), () => api.GPT.load(null as never), () => api.GPT.random(gptConfig).save(5 as never)]) {
      await expect(call()).rejects.toThrow(TypeError);
    }
    const err = await api.writeSafetensors('/tmp/node-attention-never-written.safetensors', null as never).then(() => null, (e: Error) => e);
    publicError(() => { throw err; }, 'TypeError', 'tensors');
  });

  it('a failed layer call changes no state: the cache keeps its length and contents', async () => {
    const layer = new api.MultiHeadAttention({ numHeads: 2, numKVHeads: 1 }, layerWeights());
    const cache = new api.KVCache({ batch: 1, numKVHeads: 1, headDim: 4, maxSeqLen: 6 });
    layer.forward(t([1, 4, 6], 28), { cache });
    const before = cache.snapshot();
    const failing: (() => unknown)[] = [
      () => layer.forward(t([1, 3, 6], 29), { cache }),
      () => layer.forward(t([2, 1, 6], 30), { cache }),
      () => layer.forward(t([1, 1, 6], 31), { cache, attnMask: t([1, 7]) }),
      () => layer.forward(t([1, 1, 5], 32), { cache }),
      () => layer.forward(t([1, 1, 6], 33), { cache, mask: null } as never),
    ];
    for (const call of failing) {
      cleanError(call);
      const after = cache.snapshot();
      expect(cache.length).toBe(4);
      expect(after.key.data).toEqual(before.key.data);
      expect(after.value.data).toEqual(before.value.data);
    }
    await expect(layer.forwardAsync(t([1, 3, 6], 34), { cache })).rejects.toThrow(RangeError);
    expect(cache.length).toBe(4);
    expect(cache.snapshot().key.data).toEqual(before.key.data);
    cache.dispose();
  });
});
