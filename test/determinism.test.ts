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
import { attentionRef } from './helpers/attention-ref';
import { layerRef } from './helpers/layers';
import { expectClose, matmulRef, randomArray } from './helpers/oracle';

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

/** Float64 a @ b + bias for a (m x k), b (k x n). */
function linearRef(a: Float32Array, b: Float32Array, biasData: Float32Array | null, m: number, k: number, n: number): Float64Array {
  const c = matmulRef(a, b, m, k, n);
  if (biasData) for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) c[i * n + j] += biasData[j];
  return c;
}

/** Float64 batched a @ b^T for a (batch, m, k), b (batch, n, k). */
function batchedTransBRef(a: Float32Array, b: Float32Array, batch: number, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(batch * m * n);
  for (let t = 0; t < batch; t++) for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let sum = 0;
    for (let p = 0; p < k; p++) sum += a[(t * m + i) * k + p] * b[(t * n + j) * k + p];
    c[(t * m + i) * n + j] = sum;
  }
  return c;
}

const mhaSpec = { dIn: 64, numHeads: 8, numKVHeads: 4, headDim: 8, dOut: 64, biases: false };

// Tolerances per workload, [atol, rtol], for each result against float64 and between kernel sets
// and backends: ~4x the worst measured over both backends, every kernel set (avx512, avx2,
// scalar) and 1-8 threads (NODE_ATTENTION_ERROR_LOG, helpers/oracle.ts). Measured worst, absolute
// where |expected| < 1 / relative where |expected| >= 1:
//   matmul/linear (k = 200, |c| up to ~20): 5.0e-6 / 5.7e-6 (native; JS sums in float64);
//   matmul transB (k = 50): 1.1e-6 / 1.0e-6; attention prefill: 1.8e-7 / none; decode: 3.1e-8;
//   the layer (projections of width 64 from weights in [-1, 1]: scores of ~7 std, so float32
//   rounding of q and k moves the softmax): native 2.2e-5 / 1.8e-5, JS 3.2e-6 / 1.9e-6.
const GEMM_TOL: [number, number] = [2e-5, 2e-5];

/**
 * Every op whose output must be reproducible, as [label, run, bit-identical across thread counts,
 * float64 reference, tolerance]. The references keep the cross-backend and cross-kernel-set
 * comparisons honest: both backends share the validated plan, so a validation bug would agree
 * with itself.
 */
const workloads: [string, () => Promise<Float32Array>, boolean, () => Float64Array, [number, number]][] = [
  ['matmul 300x200x250 + bias', async () => api.matmul(A, B, { bias }).data, true, () => linearRef(A.data, B.data, bias.data, 300, 200, 250), GEMM_TOL],
  ['matmul transB, batched', async () => api.matmul(tensor([3, 40, 50], 16), tensor([3, 60, 50], 17), { transB: true }).data, true,
    () => batchedTransBRef(tensor([3, 40, 50], 16).data, tensor([3, 60, 50], 17).data, 3, 40, 50, 60), [4e-6, 4e-6]],
  ['linear', async () => api.linear(tensor([4, 33, 200], 18), B, bias).data, true, () => linearRef(tensor([4, 33, 200], 18).data, B.data, bias.data, 132, 200, 250), GEMM_TOL],
  ['attention GQA causal + mask', async () => api.attention(Q, K, V, { isCausal: true, attnMask: mask, softcap: 30 }).y.data, true,
    () => attentionRef(Q, K, V, { isCausal: true, attnMask: mask, softcap: 30 }).y, [7e-7, 0]],
  ['attentionAsync GQA causal + mask', async () => (await api.attentionAsync(Q, K, V, { isCausal: true, attnMask: mask, softcap: 30 })).y.data, true,
    () => attentionRef(Q, K, V, { isCausal: true, attnMask: mask, softcap: 30 }).y, [7e-7, 0]],
  ['attention decode Sq=1 over 2048 keys', async () => api.attention(Qdecode, Klong, Vlong).y.data, false, () => attentionRef(Qdecode, Klong, Vlong).y, [1.2e-7, 0]],
  ['MultiHeadAttention prefill + decode with a cache', async () => {
    const layer = new api.MultiHeadAttention({ numHeads: 8, numKVHeads: 4 }, mhaWeights);
    const cache = new api.KVCache({ batch: 1, numKVHeads: 4, headDim: 8, maxSeqLen: 64 });
    const prefill = layer.forward({ data: X.data.subarray(0, 20 * 64), dims: [1, 20, 64] }, { cache }).data;
    const step = (await layer.forwardAsync({ data: X.data.subarray(20 * 64, 21 * 64), dims: [1, 1, 64] }, { cache })).data;
    cache.dispose();
    return Float32Array.of(...prefill, ...step);
  }, true, () => layerRef(mhaSpec, mhaWeights, X.data.subarray(0, 21 * 64), 1, 21), [1e-4, 7e-5]],
];

// Decode-shaped attention across thread counts (the key split follows the count): worst 3.7e-8
// measured (avx512, avx2, scalar); bound 4x.
const THREADS_ATOL = 1.5e-7, THREADS_RTOL = 0;

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
        else expectClose(other, one, THREADS_ATOL, THREADS_RTOL, `${label} ${threads} threads`);
      }
    });
  }

  it.skipIf(isas.length < 2).each(workloads)('%s: kernel sets agree within tolerance, each close to float64', async (label, run, _invariant, reference, [atol, rtol]) => {
    const results = [], want = reference();
    for (const isa of isas) results.push(await withSettings(isa, 2, run));
    results.forEach((result, i) => expectClose(result, want, atol, rtol, `${label} ${isas[i]} vs float64`));
    for (let i = 1; i < results.length; i++) expectClose(results[i], results[0], atol, rtol, `${label} ${isas[i]} vs ${isas[0]}`);
  });

  it.each(workloads)('%s: native and JS agree within tolerance, each close to float64', async (label, run, _invariant, reference, [atol, rtol]) => {
    const want = reference();
    api.useBackend('js');
    const js = await run();
    expectClose(js, want, atol, rtol, `${label} JS vs float64`);
    api.useBackend('native');
    const native = await run();
    expectClose(native, want, atol, rtol, `${label} native vs float64`);
    expectClose(native, js, atol, rtol, `${label} native vs JS`);
  });
});
