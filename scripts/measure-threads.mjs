// Measures the thread policy of native/include/attn/threads.h (one process-wide OpenMP thread
// count; parallel regions serialized by compute_lock()) under concurrent async jobs:
//   1. N concurrent attentionAsync jobs vs one: wall time and process CPU time should both scale
//      by ~N (jobs take turns on all the threads), not worse (oversubscription thrashing).
//   2. What waits meanwhile: a tiny sync attention() on the JS thread, and a libuv thread-pool
//      task (fs.stat) queued behind jobs that hold pool threads while waiting for the lock.
// Timings are medians of a few repetitions; the machine is shared, so read ratios, not absolutes.
//   node scripts/measure-threads.mjs [jobs=8]
import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';

const require = createRequire(import.meta.url);
const api = require('../dist/index.js');
const jobs = Number(process.argv[2] ?? 8);

function tensor(dims, seed) {
  const data = new Float32Array(dims.reduce((p, d) => p * d, 1));
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(seed * 7919 + i);
  return { data, dims };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timed(fn) {
  const cpu0 = process.cpuUsage(), t0 = performance.now();
  const extra = await fn();
  const wall = performance.now() - t0, cpu = process.cpuUsage(cpu0);
  return { wall, cpu: (cpu.user + cpu.system) / 1000, ...extra };
}

async function main() {
  const info = api.backendInfo();
  if (!info.nativeLoaded) throw new Error(info.nativeError);
  console.log(`node ${process.version}, simd ${info.simd}, OpenMP threads ${info.threads}, UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE ?? 4 + ' (default)'}`);
  const q = tensor([1, 8, 1024, 64], 1), k = tensor([1, 8, 1024, 64], 2);
  const tiny = tensor([1, 1, 4, 8], 3);
  await api.attentionAsync(q, k, k);

  const single = [], many = [];
  for (let rep = 0; rep < 5; rep++) {
    single.push(await timed(async () => { await api.attentionAsync(q, k, k); }));
    many.push(await timed(async () => {
      const pending = Array.from({ length: jobs }, () => api.attentionAsync(q, k, k));
      // While they run: a tiny sync call on the JS thread and a thread-pool filesystem call.
      const s0 = performance.now();
      api.attention(tiny, tiny, tiny);
      const syncWait = performance.now() - s0;
      const f0 = performance.now();
      const fsDone = stat('.').then(() => performance.now() - f0);
      await Promise.all(pending);
      return { syncWait, fsWait: await fsDone };
    }));
  }
  const one = { wall: median(single.map((r) => r.wall)), cpu: median(single.map((r) => r.cpu)) };
  const all = { wall: median(many.map((r) => r.wall)), cpu: median(many.map((r) => r.cpu)) };
  console.log(`1 job:        wall ${one.wall.toFixed(0)} ms, CPU ${one.cpu.toFixed(0)} ms`);
  console.log(`${jobs} jobs at once: wall ${all.wall.toFixed(0)} ms (${(all.wall / one.wall).toFixed(2)}x one job), ` +
    `CPU ${all.cpu.toFixed(0)} ms (${(all.cpu / one.cpu).toFixed(2)}x)`);
  console.log(`meanwhile: tiny sync attention() waited ${median(many.map((r) => r.syncWait)).toFixed(1)} ms, ` +
    `fs.stat() waited ${median(many.map((r) => r.fsWait)).toFixed(1)} ms (median of 5)`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
