// Memory: repeated calls, caches and layers must not leak. Each test runs a warm-up round, then
// measured rounds, forcing a full GC after each, and requires that memory stop growing: a leak of
// even a few dozen bytes per call shows up over 100k calls, one of a few KB per large call over 1k.
//
// RSS counts touched pages; KV caches are calloc'd and mostly untouched, so caches are measured
// by virtual size (VmSize), where a leaked 512 KB cache is 512 KB no matter what was written.
// Under AddressSanitizer (test:asan) the quarantine and shadow memory make both numbers
// meaningless, so the loops still run there (use-after-free and double free in finalizers are what
// ASan checks) but the growth assertions are skipped and the counts are cut.
import { readFileSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { expect, it } from 'vitest';
import { api, forEachBackend } from './helpers/backends';
import { underAsan } from './helpers/hostile';
import { randomArray } from './helpers/oracle';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const scale = underAsan ? 0.05 : 1;
const MB = 1024 * 1024;
/** Keys and values of one { batch: 1, numKVHeads: 8, headDim: 64, maxSeqLen: 8192 } cache. */
const CACHE_BYTES = 2 * 8 * 64 * 8192 * 4;

/**
 * Full GCs with event-loop turns between them: N-API finalizers (which free native caches and
 * layers) do not run inside the GC but from a later setImmediate.
 */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function vmSize(): number {
  return Number(readFileSync('/proc/self/status', 'utf8').match(/VmSize:\s+(\d+) kB/)![1]) * 1024;
}

/**
 * Runs `round` once to warm up, then `rounds` more times, and returns how much `measure` grew
 * from the end of the warm-up to the end of the last round (after a full GC each time).
 */
async function growth(round: () => unknown, rounds: number, measure: () => number): Promise<number> {
  await round();
  await settle();
  const start = measure();
  for (let r = 0; r < rounds; r++) {
    await round();
    await settle();
  }
  return measure() - start;
}

function expectBounded(grown: number, limit: number, label: string): void {
  if (underAsan) return;
  expect(grown, `${label}: grew ${(grown / MB).toFixed(1)} MB (limit ${(limit / MB).toFixed(0)} MB)`).toBeLessThan(limit);
}

const tensor = (dims: number[], seed: number) => ({ data: randomArray(dims.reduce((p, d) => p * d, 1), seed), dims });

forEachBackend('memory', (backend) => {
  it('100k small calls keep RSS flat (dot, matmul, linear, attention)', async () => {
    const a = tensor([4, 8], 1), b = tensor([8, 4], 2), bias = tensor([4], 3);
    const q = tensor([1, 2, 3, 8], 4), k = tensor([1, 1, 5, 8], 5);
    const mask = { data: new Uint8Array(15).fill(1), dims: [3, 5] };
    // Native: 4 calls x 25k x 2 measured rounds = 200k. JS holds no native memory; fewer suffice.
    const calls = Math.round((backend === 'js' ? 8_000 : 25_000) * scale);
    const round = () => {
      for (let i = 0; i < calls; i++) {
        api.dot(a.data, a.data);
        api.matmul(a, b, { bias });
        api.linear(a, b, bias);
        api.attention(q, k, k, { isCausal: i % 2 === 0, attnMask: i % 3 === 0 ? mask : undefined });
      }
    };
    // 8 MB over 200k native calls is ~40 bytes per call.
    expectBounded(await growth(round, 2, () => process.memoryUsage.rss()), 8 * MB, `${backend} small calls`);
  }, 60_000);

  it('1k large calls keep RSS flat (matmul 256^3, attention 4x128x64, attentionAsync)', async () => {
    const a = tensor([256, 256], 6), b = tensor([256, 256], 7);
    const q = tensor([1, 4, 128, 64], 8), k = tensor([1, 2, 128, 64], 9);
    const calls = Math.max(2, Math.round((backend === 'js' ? 20 : 250) * scale));
    const round = async () => {
      for (let i = 0; i < calls; i++) {
        api.matmul(a, b, { transB: i % 2 === 1 });
        api.attention(q, k, k, { isCausal: true });
        await api.attentionAsync(q, k, k);
      }
    };
    const grown = await growth(round, 3, () => process.memoryUsage.rss());
    // A leaked output or packing buffer is 256 KB per call: ~200 MB over these rounds.
    expectBounded(grown, 24 * MB, `${backend} large calls`);
  }, 120_000);

  it('10k KVCaches created and dropped return their memory, with and without dispose()', async () => {
    // 128 KB of keys + values per cache: 10k leaked caches would be 1.25 GB of address space.
    const config = { batch: 1, numKVHeads: 2, headDim: 64, maxSeqLen: 128 };
    const count = Math.round(2_500 * scale);
    const disposed = () => {
      for (let i = 0; i < count; i++) new api.KVCache(config).dispose();
    };
    // Dropped caches are freed by finalizers, which need the event loop to turn.
    const dropped = async () => {
      for (let i = 0; i < count; i++) {
        new api.KVCache(config);
        if (i % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
      }
    };
    expectBounded(await growth(disposed, 2, vmSize), 256 * MB, `${backend} disposed caches`);
    expectBounded(await growth(dropped, 2, vmSize), 256 * MB, `${backend} dropped caches`);
  }, 60_000);

  it('layers and caches in use return their memory (MHA forward with a cache, dropped)', async () => {
    const dIn = 32;
    const weights = { wq: tensor([dIn, 32], 10), wk: tensor([dIn, 16], 11), wv: tensor([dIn, 16], 12), wo: tensor([32, dIn], 13) };
    const x = tensor([1, 4, dIn], 14);
    const count = Math.round(500 * scale);
    const round = async () => {
      for (let i = 0; i < count; i++) {
        if (i % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
        const layer = new api.MultiHeadAttention({ numHeads: 4, numKVHeads: 2 }, weights);
        const cache = new api.KVCache({ batch: 1, numKVHeads: 2, headDim: 8, maxSeqLen: 4096 });
        layer.forward(x, { cache });
        layer.forward({ data: x.data.subarray(0, dIn), dims: [1, 1, dIn] }, { cache });
        if (i % 2 === 0) cache.dispose();
      }
    };
    expectBounded(await growth(round, 2, vmSize), 256 * MB, `${backend} layers`);
  }, 60_000);
});

it.skipIf(!api.backendInfo().nativeLoaded)('native caches report their size to V8, so dropping them triggers GC', async () => {
  // 32 MB caches, never written (calloc'd pages stay unmapped), dropped without dispose() and
  // without an explicit gc(): only the external-memory accounting makes V8 collect them, and the
  // finalizers that free them run when the event loop turns.
  api.useBackend('native');
  await settle();
  let collections = 0;
  const observer = new PerformanceObserver((list) => { collections += list.getEntries().length; });
  observer.observe({ entryTypes: ['gc'] });
  const start = vmSize();
  const count = underAsan ? 20 : 100;
  let peak = 0;
  for (let i = 0; i < count; i++) {
    new api.KVCache({ batch: 1, numKVHeads: 8, headDim: 64, maxSeqLen: 8192 });
    if (i % 10 === 9) {
      await new Promise((resolve) => setImmediate(resolve));
      peak = Math.max(peak, vmSize() - start);
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 20));
  observer.disconnect();
  expect(collections).toBeGreaterThan(0);
  if (underAsan) return;
  // Unaccounted and uncollected, the caches would all still be mapped at the end (3.2 GB). How many
  // V8 collects in between depends on its heuristics and on the load from parallel test files, so
  // the bound only requires that some were freed while the loop ran.
  expect(peak, `VmSize peaked ${(peak / MB).toFixed(0)} MB above the start`).toBeLessThan(count * CACHE_BYTES * 0.9);
}, 60_000);
