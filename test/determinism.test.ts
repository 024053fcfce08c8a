// Determinism. What holds (and is asserted here):
//   - Every backend, kernel set and thread count: the same inputs give bit-identical outputs on
//     every run, sync or async.
//   - Native, across thread counts (1, 2, 3, 8): bit-identical for matmul, linear, prefill
//     attention and the layers' prefill. Threads split the output (rows and columns of C; batch,
//     kv groups and query blocks of attention), never a reduction, so each output element is
//     computed by the same sequence of operations whatever the count.
//   - Except decode-shaped attention (few query rows over many keys): it splits the keys across
//     threads and merges the partial softmaxes (log-sum-exp), and the split follows the thread
//     count, so the summation order, and the last bits, change with it. Asserted close, not equal.
//   - Across kernel sets (avx2 vs scalar) and across backends (native vs JS): not promised, and
//     in practice different (FMA vs separate multiply-add, summation order, exp); only close,
//     asserted within stated tolerances.
import { describe, expect, it } from 'vitest';
import { api, forEachBackend, nativeAvailable } from './helpers/backends';
import { expectClose, randomArray } from './helpers/oracle';

const tensor = (dims: number[], seed: number) => ({ data: randomArray(dims.reduce((p, d) => p * d, 1), seed), dims });

function bits(data: Float32Array): Uint32Array {
  return new Uint32Array(data.buffer, data.byteOffset, data.length);
}

function expectIdentical(actual: Float32Array, expected: Float32Array, label: string): void {
  expect(actual.length, label).toBe(expected.length);
  const a = bits(actual), e = bits(expected);
  let first = -1, count = 0;
  for (let i = 0; i < e.length; i++) {
    if (a[i] !== e[i]) {
      count++;
      if (first < 0) first = i;
    }
  }
  expect(count, `${label}: ${count} elements differ, first at ${first} (${actual[first]} vs ${expected[first]})`).toBe(0);
}

// Shapes large enough that the native kernels split the work across threads.
const A = tensor([300, 200], 1), B = tensor([200, 250], 2), bias = tensor([250], 3);
const Q = tensor([2, 8, 96, 32], 4), K = tensor([2, 2, 160, 32], 5), V = tensor([2, 2, 160, 32], 6);
const mask = tensor([96, 160], 7);
const Qdecode = tensor([1, 8, 1, 64], 8), Klong = tensor([1, 2, 2048, 64], 9), Vlong = tensor([1, 2, 2048, 64], 10);
const mhaWeights = { wq: tensor([64, 64], 11), wk: tensor([64, 32], 12), wv: tensor([64, 32], 13), wo: tensor([64, 64], 14) };
const X = tensor([1, 24, 64], 15);

/** Every op whose output must be reproducible, as [label, run, bit-identical across thread counts]. */
const workloads: [string, () => Promise<Float32Array>, boolean][] = [
  ['matmul 300x200x250 + bias', async () => api.matmul(A, B, { bias }).data, true],
  ['matmul transB, batched', async () => api.matmul(tensor([3, 40, 50], 16), tensor([3, 60, 50], 17), { transB: true }).data, true],
  ['linear', async () => api.linear(tensor([4, 33, 200], 18), B, bias).data, true],
  ['attention GQA causal + mask', async () => api.attention(Q, K, V, { isCausal: true, attnMask: mask, softcap: 30 }).y.data, true],
  ['attentionAsync GQA causal + mask', async () => (await api.attentionAsync(Q, K, V, { isCausal: true, attnMask: mask, softcap: 30 })).y.data, true],
  ['attention decode Sq=1 over 2048 keys', async () => api.attention(Qdecode, Klong, Vlong).y.data, false],
  ['MultiHeadAttention prefill + decode with a cache', async () => {
    const layer = new api.MultiHeadAttention({ numHeads: 8, numKVHeads: 4 }, mhaWeights);
    const cache = new api.KVCache({ batch: 1, numKVHeads: 4, headDim: 8, maxSeqLen: 64 });
    const prefill = layer.forward({ data: X.data.subarray(0, 20 * 64), dims: [1, 20, 64] }, { cache }).data;
    const step = (await layer.forwardAsync({ data: X.data.subarray(20 * 64, 21 * 64), dims: [1, 1, 64] }, { cache })).data;
    cache.dispose();
    return Float32Array.of(...prefill, ...step);
  }, true],
];

forEachBackend('determinism', () => {
  it.each(workloads)('%s: bit-identical on every run', async (label, run) => {
    const first = await run();
    for (let i = 0; i < 3; i++) expectIdentical(await run(), first, `${label} run ${i + 2}`);
  });
});

describe.skipIf(!nativeAvailable)('determinism across native thread counts and kernel sets', () => {
  const isas = nativeAvailable ? api.backendInfo().simdSupported : [];

  async function withSettings<T>(isa: string, threads: number, run: () => Promise<T>): Promise<T> {
    const before = api.getNumThreads();
    api.useBackend('native');
    expect(api.setSimd(isa)).toBe(true);
    api.setNumThreads(threads);
    try {
      return await run();
    } finally {
      api.setNumThreads(before);
      api.setSimd(isas[0]);
    }
  }

  for (const isa of isas) {
    it.each(workloads)(`${isa}: %s with 1, 2, 3 and 8 threads (bit-identical: %s)`, async (label, run, invariant) => {
      const one = await withSettings(isa, 1, run);
      for (const threads of [2, 3, 8]) {
        const other = await withSettings(isa, threads, run);
        if (invariant) expectIdentical(other, one, `${label} ${threads} threads`);
        else expectClose(other, one, 1e-6, 1e-5, `${label} ${threads} threads`);
      }
    });
  }

  it.skipIf(isas.length < 2).each(workloads)('%s: kernel sets agree within tolerance', async (label, run) => {
    const results = [];
    for (const isa of isas) results.push(await withSettings(isa, 2, run));
    for (let i = 1; i < results.length; i++) expectClose(results[i], results[0], 1e-4, 1e-3, `${label} ${isas[i]} vs ${isas[0]}`);
  });

  it.each(workloads)('%s: native and JS agree within tolerance', async (label, run) => {
    api.useBackend('js');
    const js = await run();
    api.useBackend('native');
    expectClose(await run(), js, 1e-4, 1e-3, label);
  });
});
