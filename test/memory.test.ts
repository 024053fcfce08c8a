// Memory: repeated calls, caches and layers must not leak. Each test runs a warm-up round, then
// measured rounds, forcing a full GC after each, and requires that memory stop growing: a leak of
// even a few dozen bytes per call shows up over 100k calls, one of a few KB per large call over 1k.
//
// RSS counts touched pages; KV caches are calloc'd and mostly untouched, so caches are measured
// by virtual size (VmSize), where a leaked 512 KB cache is 512 KB no matter what was written.
// Under AddressSanitizer (test:asan) the quarantine and shadow memory make both numbers
// meaningless, so the loops still run there (use-after-free and double free in finalizers are what
// ASan checks) but the growth assertions are skipped and the counts are cut.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
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
 * layers) do not run inside the GC but on a later turn of the loop, one that runs timers (a
 * loop of setImmediate alone was seen to leave them pending until exit).
 */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 2));
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

  // The mixed workload of issue 17, in a fresh process per backend (no other test file's memory in
  // its RSS): 100k small matmuls, 20k small attentions, 2k small attentionAsync, 1k large attentions
  // (B1 H8 S256 D64 causal) and 5k KVCache create/use/drop (half disposed, half left to the GC).
  // Measured on native: RSS grows 5-15 MB over the first run (V8's heap and malloc's arenas
  // settling) and within +-4 MB over two more on a quiet machine, up to 11 MB with other jobs on
  // the cores; before caches returned freed memory to the OS it grew 45 MB, then 170 MB over 3x the
  // work. Bounds: 30 MB for the first run, 16 MB for the next two.
  // On JS (5% of the calls) every output and cache is a typed array whose backing store V8 frees
  // to malloc, which keeps some: 25-31 MB, then 18-20 MB for twice the work (not proportional:
  // no leak). Bounds 48 and 32 MB.
  it('a mixed workload of many calls and caches stops growing (RSS after N and after 3N calls)', () => {
    const script = `
      const api = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'index.js'))});
      api.useBackend(${JSON.stringify(backend)});
      const share = ${backend === 'js' ? 0.05 : 1} * ${scale};
      const rnd = (n, s) => Float32Array.from({ length: n }, (_, i) => Math.sin((i + s) * 12.9898) * 0.5);
      const t = (dims, s) => ({ data: rnd(dims.reduce((p, d) => p * d, 1), s), dims });
      const a = t([16, 16], 1), b = t([16, 16], 2);
      const sq = t([1, 2, 8, 16], 3), sk = t([1, 2, 8, 16], 4), sv = t([1, 2, 8, 16], 5);
      const lq = t([1, 8, 256, 64], 6), lk = t([1, 8, 256, 64], 7), lv = t([1, 8, 256, 64], 8);
      const layer = new api.MultiHeadAttention({ numHeads: 4 }, { wq: t([32, 32], 9), wk: t([32, 32], 10), wv: t([32, 32], 11) });
      const x = t([1, 1, 32], 12);
      const times = (n) => Math.max(1, Math.round(n * share));
      async function run(k) {
        for (let i = 0; i < times(100000 * k); i++) api.matmul(a, b);
        for (let i = 0; i < times(20000 * k); i++) api.attention(sq, sk, sv, { isCausal: true });
        for (let i = 0; i < times(2000 * k); i++) await api.attentionAsync(sq, sk, sv, { isCausal: true });
        for (let i = 0; i < times(1000 * k); i++) api.attention(lq, lk, lv, { isCausal: true });
        for (let i = 0; i < times(5000 * k); i++) {
          const cache = new api.KVCache({ batch: 1, numKVHeads: 4, headDim: 8, maxSeqLen: 64 });
          layer.forward(x, { cache });
          if (i % 2 === 0) cache.dispose();
        }
      }
      // Finalizers of dropped native objects run from timers' turns of the loop, not immediates.
      const settle = async () => { for (let i = 0; i < 4; i++) { global.gc(); await new Promise((r) => setTimeout(r, 2)); } };
      (async () => {
        await run(0.5); await settle();
        const m0 = process.memoryUsage.rss();
        await run(1); await settle();
        const m1 = process.memoryUsage.rss();
        await run(2); await settle();
        const m2 = process.memoryUsage.rss();
        console.log(JSON.stringify({ first: m1 - m0, more: m2 - m1 }));
      })();
    `;
    const child = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 120_000 });
    expect(child.status, child.stderr).toBe(0);
    const { first, more } = JSON.parse(child.stdout.trim().split('\n').pop()!) as { first: number; more: number };
    expectBounded(first, (backend === 'native' ? 30 : 48) * MB, `${backend} mixed workload, first N calls`);
    expectBounded(more, (backend === 'native' ? 16 : 32) * MB, `${backend} mixed workload, 2N more calls`);
  }, 150_000);

  // 10k generated tokens in a fresh process per backend: calls of 500 new tokens (generate,
  // generateAsync and stream in turn, sampled, each with its own KV caches of 1 MB) on a small GPT:
  // 1000 tokens of warm-up, then N = 2500 and 3N = 7500 more, RSS read after a full GC each time.
  // A leaked decoding state per call would add 5 and 15 MB, leaked logits per step 10 and 30 MB.
  // Measured (12 runs each): native RSS grows 0.1-2.1 MB over N and -0.8-1.1 MB over 3N (at most
  // 1.9 MB in all, 3N growing at most 0.8 MB more than N). JS mostly the same, but in 2 of 10 runs
  // malloc kept 12-15 MB of freed typed-array stores after the 3N run while V8's heapUsed,
  // external and arrayBuffers stayed within 0.25 MB in every run. Bounds: RSS 6 MB in all (native)
  // or 24 MB (JS) and 3N at most 3 MB above N (native); for both, the memory V8 sees (heapUsed +
  // arrayBuffers) at most 1 MB more over the 10k tokens (a leaked JS array of logits per step is
  // 30 MB there).
  it('10k generated tokens keep RSS flat (generate, generateAsync, stream; N and 3N tokens grow the same)', () => {
    const script = `
      const api = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'index.js'))});
      api.useBackend(${JSON.stringify(backend)});
      const model = api.GPT.random({ vocab_size: 1024, n_positions: 512, n_embd: 128, n_layer: 2, n_head: 4 }, 7, { std: 0.5 });
      const PER = Math.max(4, Math.round(500 * ${scale})), prompt = [1, 2, 3, 4];
      let calls = 0;
      async function run(tokens) {
        for (let done = 0; done < tokens; done += PER) {
          const opts = { maxNewTokens: PER, eosTokenId: null, temperature: 0.8, topK: 40, seed: calls };
          let n = 0;
          if (calls % 3 === 0) n = model.generate(prompt, opts).length;
          else if (calls % 3 === 1) n = (await model.generateAsync(prompt, opts)).length;
          else for await (const t of model.stream(prompt, opts)) n++;
          if (n !== PER) throw new Error('generated ' + n + ' tokens, not ' + PER);
          calls++;
        }
      }
      // Finalizers of dropped native objects run from timers' turns of the loop, not immediates.
      const settle = async () => { for (let i = 0; i < 4; i++) { global.gc(); await new Promise((r) => setTimeout(r, 2)); } };
      const seen = () => { const m = process.memoryUsage(); return m.heapUsed + m.arrayBuffers; };
      (async () => {
        await run(2 * PER); await settle();
        const m0 = process.memoryUsage.rss(), v0 = seen();
        await run(5 * PER); await settle();
        const m1 = process.memoryUsage.rss();
        await run(15 * PER); await settle();
        const m2 = process.memoryUsage.rss();
        console.log(JSON.stringify({ first: m1 - m0, more: m2 - m1, v8: seen() - v0 }));
      })();
    `;
    const child = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 120_000 });
    expect(child.status, child.stderr).toBe(0);
    const { first, more, v8 } = JSON.parse(child.stdout.trim().split('\n').pop()!) as { first: number; more: number; v8: number };
    const label = `${backend}: RSS +${(first / MB).toFixed(2)} MB over N tokens, +${(more / MB).toFixed(2)} MB over 3N`;
    expectBounded(first + more, (backend === 'native' ? 6 : 24) * MB, `${label}; 10k tokens`);
    if (backend === 'native') expectBounded(more - first, 3 * MB, `${label}; 3N over N`);
    expectBounded(v8, 1 * MB, `${backend} generation: V8 heapUsed + arrayBuffers over 10k tokens`);
  }, 150_000);

  it('layers and caches in use return their memory (MHA forward with a cache, dropped)', async () => {
    const dIn = 32;
    const weights = { wq: tensor([dIn, 32], 10), wk: tensor([dIn, 16], 11), wv: tensor([dIn, 16], 12), wo: tensor([32, dIn], 13) };
    const x = tensor([1, 4, dIn], 14);
    const count = Math.round(500 * scale);
    const round = async () => {
      for (let i = 0; i < count; i++) {
        if (i % 100 === 99) await new Promise((resolve) => setTimeout(resolve, 1));
        const layer = new api.MultiHeadAttention({ numHeads: 4, numKVHeads: 2 }, weights);
        const cache = new api.KVCache({ batch: 1, numKVHeads: 2, headDim: 8, maxSeqLen: 4096 });
        layer.forward(x, { cache });
        layer.forward({ data: x.data.subarray(0, dIn), dims: [1, 1, dIn] }, { cache });
        if (i % 2 === 0) cache.dispose();
      }
    };
    // 256 KB of cache and ~10 KB of weights per iteration: 500 leaked would be 130 MB of VmSize.
    expectBounded(await growth(round, 2, vmSize), 32 * MB, `${backend} layers`);
  }, 60_000);
});
