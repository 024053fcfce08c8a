// Concurrency: many async calls in flight give the same bits as sequential calls; the addon loads
// and computes in several worker_threads at once (context-aware, per-instance state); settings
// changed while jobs run (thread count, kernel set) never corrupt a job; a worker terminated with
// work in flight does not take the process down; an input buffer transferred away while an async
// call runs is never read after it is gone.
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { api, forEachBackend, nativeAvailable } from './helpers/backends';
import { randomArray } from './helpers/oracle';

const tensor = (dims: number[], seed: number) => ({ data: randomArray(dims.reduce((p, d) => p * d, 1), seed), dims });
const same = (a: Float32Array, b: Float32Array) => Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

forEachBackend('concurrency', () => {
  it('24 attentionAsync calls in flight give the same bits as sequential attention calls', async () => {
    const calls = Array.from({ length: 24 }, (_, i) => {
      const Sq = 1 + (i % 5) * 13, Skv = 16 + i * 7;
      return {
        q: tensor([1, 4, Sq, 32], 100 + i), k: tensor([1, 2, Skv, 32], 200 + i), v: tensor([1, 2, Skv, 32], 300 + i),
        opts: { isCausal: i % 2 === 0, softcap: i % 3 === 0 ? 20 : 0 },
      };
    });
    const sequential = calls.map(({ q, k, v, opts }) => api.attention(q, k, v, opts).y.data);
    const concurrent = await Promise.all(calls.map(({ q, k, v, opts }) => api.attentionAsync(q, k, v, opts)));
    concurrent.forEach((result, i) => expect(same(result.y.data, sequential[i]), `call ${i}`).toBe(true));
  });

  it('forwardAsync on several layers and caches at once equals running them one by one', async () => {
    const weights = { wq: tensor([48, 48], 1), wk: tensor([48, 24], 2), wv: tensor([48, 24], 3), wo: tensor([48, 48], 4) };
    const layers = [0, 1].map(() => new api.MultiHeadAttention({ numHeads: 6, numKVHeads: 3 }, weights));
    const prompts = Array.from({ length: 6 }, (_, i) => tensor([1, 5 + i, 48], 10 + i));
    const run = async (parallel: boolean) => {
      const caches = prompts.map(() => new api.KVCache({ batch: 1, numKVHeads: 3, headDim: 8, maxSeqLen: 32 }));
      const step = (i: number) => layers[i % 2].forwardAsync(prompts[i], { cache: caches[i] });
      const outputs = parallel ? await Promise.all(prompts.map((_, i) => step(i))) : [];
      if (!parallel) for (let i = 0; i < prompts.length; i++) outputs.push(await step(i));
      const snapshots = caches.map((c) => c.snapshot().key.data);
      caches.forEach((c) => c.dispose());
      return { outputs: outputs.map((o) => o.data), snapshots };
    };
    const one = await run(false), all = await run(true);
    all.outputs.forEach((y, i) => expect(same(y, one.outputs[i]), `layer output ${i}`).toBe(true));
    all.snapshots.forEach((k, i) => expect(same(k, one.snapshots[i]), `cache ${i}`).toBe(true));
  });
});

describe.skipIf(!nativeAvailable)('native concurrency', () => {
  it('jobs in flight survive thread-count and kernel-set changes, and sync calls interleave', async () => {
    api.useBackend('native');
    const isas = api.backendInfo().simdSupported, threadsBefore = api.getNumThreads();
    const q = tensor([1, 8, 128, 64], 20), k = tensor([1, 8, 256, 64], 21);
    const a = tensor([64, 96], 22), b = tensor([96, 80], 23);
    // The result of each kernel set (prefill attention and matmul are bit-identical across thread
    // counts, test/determinism.test.ts): a job must give exactly one of them. Kernel sets differ in
    // the last bits (avx2 vs scalar by ~1e-7), so a tolerance could not tell a job that mixed two
    // sets, or read a half-switched table, from a clean one; bit equality can.
    const perIsa = new Map<string, { attention: Float32Array; matmul: Float32Array }>();
    try {
      for (const isa of isas) {
        expect(api.setSimd(isa)).toBe(true);
        perIsa.set(isa, { attention: api.attention(q, k, k).y.data, matmul: api.matmul(a, b).data });
      }
      const matches = (data: Float32Array, key: 'attention' | 'matmul') => isas.filter((isa) => same(data, perIsa.get(isa)![key]));
      if (isas.length > 1) {
        // The sets differ here, so "equals one of them" names which one ran.
        const first = perIsa.get(isas[0])!.attention, last = perIsa.get(isas[isas.length - 1])!.attention;
        expect(same(first, last)).toBe(false);
        // The check catches a job that mixed two sets (heads 0-3 from one, 4-7 from the other).
        const mixed = first.slice();
        mixed.set(last.subarray(mixed.length / 2), mixed.length / 2);
        expect(matches(mixed, 'attention')).toEqual([]);
      }
      const pending = Array.from({ length: 12 }, () => api.attentionAsync(q, k, k));
      for (let i = 0; i < 40; i++) {
        api.setNumThreads(1 + (i % 3));
        const isa = isas[i % isas.length];
        api.setSimd(isa);
        // A sync call made after setSimd uses that set, exactly.
        expect(same(api.matmul(a, b).data, perIsa.get(isa)!.matmul), `matmul during async jobs, step ${i} (${isa})`).toBe(true);
        await new Promise((resolve) => setImmediate(resolve));
      }
      // Each job reads the kernel table once: its result is bit-identical to one kernel set's.
      const results = await Promise.all(pending);
      results.forEach((result, j) => expect(matches(result.y.data, 'attention'), `async job ${j}: bit-identical to no kernel set's result`).not.toEqual([]));
    } finally {
      api.setNumThreads(threadsBefore);
      api.setSimd(isas[0]);
    }
  });

  const distRoot = path.join(__dirname, '..', 'dist', 'index.js');

  interface Inputs { a: number[]; b: number[]; q: number[]; k: number[]; x: number[]; w: number[] }

  // Runs in the main thread and, through its source text, in each worker: it may use only its
  // arguments and globals.
  async function workload(lib: typeof api, inputs: Inputs, repeats: number): Promise<Float32Array[]> {
    const t = (dims: number[], values: number[]) => ({ data: Float32Array.from(values), dims });
    const { a, b, q, k, x, w } = inputs;
    const out: Float32Array[] = [];
    for (let i = 0; i < repeats; i++) {
      out.push(lib.matmul(t([48, 40], a), t([40, 56], b)).data);
      out.push(lib.attention(t([1, 4, 33, 16], q), t([1, 2, 50, 16], k), t([1, 2, 50, 16], k), { isCausal: true }).y.data);
      out.push((await lib.attentionAsync(t([1, 4, 33, 16], q), t([1, 2, 50, 16], k), t([1, 2, 50, 16], k))).y.data);
      const layer = new lib.MultiHeadAttention({ numHeads: 4, numKVHeads: 2 },
        { wq: t([16, 16], w), wk: t([16, 8], w.slice(0, 128)), wv: t([16, 8], w.slice(128, 256)) });
      const cache = new lib.KVCache({ batch: 1, numKVHeads: 2, headDim: 4, maxSeqLen: 16 });
      out.push(layer.forward(t([1, 6, 16], x), { cache }).data);
      out.push((await layer.forwardAsync(t([1, 1, 16], x.slice(0, 16)), { cache })).data);
      cache.dispose();
    }
    return out;
  }

  const workerSource = `
    const { parentPort, workerData } = require('node:worker_threads');
    const api = require(workerData.dist);
    api.useBackend('native');
    (${workload.toString()})(api, workerData.inputs, workerData.repeats).then(
      (out) => parentPort.postMessage({ info: api.backendInfo(), out }),
      (err) => parentPort.postMessage({ error: String((err && err.stack) || err) }));
  `;

  it('loads and computes in 3 worker threads and the main thread at once, with identical bits', async () => {
    api.useBackend('native');
    const inputs: Inputs = {
      a: Array.from(randomArray(48 * 40, 30)), b: Array.from(randomArray(40 * 56, 31)), q: Array.from(randomArray(4 * 33 * 16, 32)),
      k: Array.from(randomArray(2 * 50 * 16, 33)), x: Array.from(randomArray(6 * 16, 34)), w: Array.from(randomArray(256, 35)),
    };
    const spawn = () => new Promise<{ info: { nativeLoaded: boolean; simd: string }; out: Float32Array[] }>((resolve, reject) => {
      const worker = new Worker(workerSource, { eval: true, workerData: { dist: distRoot, inputs, repeats: 3 } });
      worker.once('message', (message) => (message.error ? reject(new Error(message.error)) : resolve(message)));
      worker.once('error', reject);
      worker.once('exit', (code) => code !== 0 && reject(new Error(`worker exited with ${code}`)));
    });
    const workers = [spawn(), spawn(), spawn()];
    const main = await workload(api, inputs, 3);
    for (const result of await Promise.all(workers)) {
      expect(result.info.nativeLoaded).toBe(true);
      expect(result.info.simd).toBe(api.backendInfo().simd);
      expect(result.out.length).toBe(main.length);
      result.out.forEach((data, i) => expect(same(data, main[i]), `output ${i}`).toBe(true));
    }
  }, 120_000);

  it('a worker terminated with async work in flight does not take the process down', async () => {
    const source = `
      const { parentPort, workerData } = require('node:worker_threads');
      const api = require(workerData.dist);
      api.useBackend('native');
      const big = (n) => ({ data: new Float32Array(n).fill(0.5), dims: [1, 8, n / 8 / 64, 64] });
      const q = big(8 * 512 * 64);
      for (let i = 0; i < 8; i++) api.attentionAsync(q, q, q);
      const layer = new api.MultiHeadAttention({ numHeads: 4 }, { wq: { data: new Float32Array(256 * 256), dims: [256, 256] },
        wk: { data: new Float32Array(256 * 256), dims: [256, 256] }, wv: { data: new Float32Array(256 * 256), dims: [256, 256] } });
      const cache = new api.KVCache({ batch: 1, numKVHeads: 4, headDim: 64, maxSeqLen: 1024 });
      layer.forwardAsync({ data: new Float32Array(512 * 256), dims: [1, 512, 256] }, { cache });
      parentPort.postMessage('queued');
    `;
    for (let round = 0; round < 3; round++) {
      const worker = new Worker(source, { eval: true, workerData: { dist: distRoot } });
      await new Promise((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
      await worker.terminate();
    }
    api.useBackend('native');
    expect(api.dot(new Float32Array([1, 2, 3]), new Float32Array([4, 5, 6]))).toBe(32);
  }, 60_000);

  // Runs in a child process, so a crash is reported as this test's failure instead of taking the
  // test runner's worker down with it.
  async function transferDuringAsync(lib: typeof api, gcNow: () => void, scenario: string): Promise<string[]> {
    const problems: string[] = [];
    const filled = (dims: number[], seed: number) => {
      const data = new Float32Array(dims.reduce((p, d) => p * d, 1));
      for (let i = 0; i < data.length; i++) data[i] = Math.sin(seed + i);
      return { data, dims };
    };
    const same = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((x, i) => Object.is(x, b[i]));
    // Collects the transferred clone (freeing its memory) and refills freed memory of that size
    // with NaN, so a job still reading the old pointer computes garbage even where the allocator
    // keeps the pages mapped (under test:asan the read itself is reported).
    const scribble = (bytes: number) => {
      gcNow();
      return Array.from({ length: 8 }, () => new Float32Array(bytes / 4).fill(NaN));
    };
    const check = (outcome: PromiseSettledResult<Float32Array>, expected: Float32Array, label: string) => {
      if (outcome.status === 'fulfilled') {
        if (!same(outcome.value, expected)) problems.push(`${label}: resolved with data that was not the input's`);
      } else if (!['TypeError', 'RangeError'].includes((outcome.reason as Error).constructor.name)) {
        problems.push(`${label}: rejected with ${String(outcome.reason)}`);
      }
    };
    lib.useBackend('native');
    const q = filled([1, 8, 512, 64], 1), k = filled([1, 8, 512, 64], 2), v = filled([1, 8, 512, 64], 3);
    const expected = lib.attention(q, k, v).y.data;
    for (let round = 0; round < (scenario === 'attention' ? 3 : 0); round++) {
      const victim = { data: Float32Array.from(k.data), dims: k.dims };
      const pending = [lib.attentionAsync(q, victim, v), lib.attentionAsync(q, victim, v)].map((p) => p.then((r) => r.y.data));
      structuredClone(victim.data.buffer, { transfer: [victim.data.buffer] });
      scribble(k.data.byteLength);
      (await Promise.allSettled(pending)).forEach((o) => check(o, expected, `attentionAsync round ${round}`));
    }
    const layer = new lib.MultiHeadAttention({ numHeads: 4 }, { wq: filled([256, 256], 4), wk: filled([256, 256], 5), wv: filled([256, 256], 6) });
    const x = filled([1, 512, 256], 7);
    const want = layer.forward(x).data;
    for (let round = 0; round < (scenario === 'layer input' ? 3 : 0); round++) {
      const xVictim = { data: Float32Array.from(x.data), dims: x.dims };
      const running = layer.forwardAsync(xVictim).then((r) => r.data);
      structuredClone(xVictim.data.buffer, { transfer: [xVictim.data.buffer] });
      scribble(x.data.byteLength);
      (await Promise.allSettled([running])).forEach((o) => check(o, want, `forwardAsync round ${round}`));
    }
    // The layer reads its weights in place: transferring one mid-call must not be read either.
    for (let round = 0; round < (scenario === 'layer weight' ? 3 : 0); round++) {
      const wq = filled([256, 256], 4);
      const owned = new lib.MultiHeadAttention({ numHeads: 4 }, { wq, wk: filled([256, 256], 5), wv: filled([256, 256], 6) });
      const running = owned.forwardAsync(x).then((r) => r.data);
      structuredClone(wq.data.buffer, { transfer: [wq.data.buffer] });
      scribble(wq.data.byteLength || 256 * 256 * 4);
      (await Promise.allSettled([running])).forEach((o) => check(o, want, `forwardAsync with a transferred weight, round ${round}`));
    }
    return problems;
  }

  it.each(['attention', 'layer input', 'layer weight'])('an array transferred away during an async call (%s) is never read after it is freed', (scenario) => {
    // The call may complete from data it secured before the transfer, or reject with a clean
    // error; it must not read the freed buffer (crash, garbage, or an ASan report).
    const script = `
      const api = require(${JSON.stringify(distRoot)});
      (${transferDuringAsync.toString()})(api, global.gc, ${JSON.stringify(scenario)}).then((problems) => {
        console.log(JSON.stringify(problems));
      });
    `;
    const child = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 120_000 });
    const sanitizer = child.stderr.indexOf('ERROR: AddressSanitizer');
    const stderr = sanitizer >= 0 ? child.stderr.slice(sanitizer, sanitizer + 4000) : child.stderr.slice(-4000);
    const report = `exit ${child.status}${child.signal ? ` (${child.signal})` : ''}\n${child.stdout}\n${stderr}`;
    expect(child.status, report).toBe(0);
    expect(JSON.parse(child.stdout.trim().split('\n').pop()!), report).toEqual([]);
  }, 120_000);
});
