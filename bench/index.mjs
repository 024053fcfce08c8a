// `npm run bench`: every workload of bench/workloads.mjs, native vs JS (and onnxruntime-node with
// --peers), timed with the `benchmark` package. Variants are interleaved in rounds (native, JS, ort,
// then the next round in another order) and each figure is the median of all samples, because
// this machine is shared and noisy. Percentages are of limits measured here by a native probe.
//
// Usage: npm run bench -- [filter ...] [--peers] [--quick] [--json <path>] [--threads <n>]
//                         [--rounds <n>] [--js-all] [--no-js] [--list]
//   filter   workload ids or words of their titles/groups, case-insensitive (M1, a3, decode, gpt)
import Benchmark from 'benchmark';
import cliProgress from 'cli-progress';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatMs, formatTable, median, renderChart, resultsPath, summarize, writeJson, VARIANTS } from './report.mjs';
import { workloads } from './workloads.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..');

const { values: opts, positionals: filters } = parseArgs({
  allowPositionals: true,
  options: {
    peers: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
    threads: { type: 'string' },
    rounds: { type: 'string' },
    'js-all': { type: 'boolean', default: false },
    'no-js': { type: 'boolean', default: false },
    list: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
    // Internal: one variant of one workload in a fresh process (peak RSS of that variant alone).
    child: { type: 'string' },
    variant: { type: 'string' },
    candidate: { type: 'string' },
  },
});

// Per round and variant: Benchmark.js's maxTime (seconds) and minSamples.
const timing = opts.quick
  ? { rounds: 1, maxTime: 0.25, minSamples: 2 }
  : { rounds: 3, maxTime: 1, minSamples: 3 };
if (opts.rounds) timing.rounds = positiveInt(opts.rounds, '--rounds');

function positiveInt(text, name) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`${name} expects a positive integer, got ${JSON.stringify(text)}`);
    process.exit(2);
  }
  return n;
}

if (opts.help) {
  console.log(`npm run bench -- [filter ...] [options]
  filter          workload ids or words of their titles/groups, case-insensitive (M1, a3, decode, gpt)
  --peers         also run onnxruntime-node (outputs checked against ours first) and node-llama-cpp (G1, G1h, G4)
  --quick         one short round per variant; skips single-call JS runs
  --json <path>   write the results there (default bench/results/<date>-<machine>.json)
  --threads <n>   native and onnxruntime threads (default: all CPUs)
  --rounds <n>    interleaved rounds per variant (default 3, --quick 1)
  --js-all        also run JS where it is skipped by default (minutes per call)
  --no-js         skip every JS run
  --list          list the workloads`);
  process.exit(0);
}

function selected(w) {
  if (filters.length === 0) return true;
  const hay = `${w.id} ${w.group} ${w.title}`.toLowerCase();
  return filters.some((f) => w.id.toLowerCase() === f.toLowerCase() || hay.includes(f.toLowerCase()));
}

if (opts.list) {
  for (const w of workloads) console.log(`${w.id.padEnd(4)} ${w.group.padEnd(9)} ${w.title}`);
  process.exit(0);
}

async function loadPackage() {
  const entry = path.join(root, 'dist', 'index.mjs');
  if (!fs.existsSync(entry)) {
    console.error('dist/ is missing: run `npm run build:ts` first (`npm run bench` does it for you).');
    process.exit(2);
  }
  return import(entry);
}

/** The addon itself, for the private probes (the package does not re-export them). */
function nativeBinding(api) {
  const file = api.backendInfo().binaryPath;
  return file ? createRequire(import.meta.url)(file) : null;
}

// ---------------------------------------------------------------------------------------------
// Timing with Benchmark.js. Slow or async calls run in deferred mode: Benchmark.js's plain mode
// calls the function once more untimed on every cycle (its "pretest"), which doubles the cost of
// a call that takes seconds; deferred mode has no pretest and a few microseconds of overhead,
// negligible next to a call of milliseconds.

function measure(name, fn, { isAsync, slow, maxTime, minSamples, onCycle }) {
  return new Promise((resolve, reject) => {
    let failure = null;
    const options = { maxTime, minSamples, initCount: 1, onCycle };
    let bench;
    if (isAsync) {
      bench = new Benchmark(name, {
        ...options,
        defer: true,
        fn: (deferred) => fn().then(() => deferred.resolve(), (err) => {
          failure = err;
          deferred.benchmark.abort();
          deferred.resolve();
        }),
      });
    } else if (slow) {
      bench = new Benchmark(name, { ...options, defer: true, fn: (deferred) => { fn(); deferred.resolve(); } });
    } else {
      bench = new Benchmark(name, { ...options, fn });
    }
    bench.on('complete', () => {
      if (failure || bench.error) reject(failure ?? bench.error);
      else resolve(bench.stats.sample.slice());
    });
    bench.run({ async: true });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Output checks: every variant against a float64 reference at sampled elements; native against
// JS and the peer against ours in full. Errors are relative to the largest reference magnitude,
// so sums of 1024 terms and attention outputs in [-1, 1] use one rule.

function compare(actual, expected, tol, what) {
  if (actual.length !== expected.length) return { ok: false, detail: `${what}: length ${actual.length} vs ${expected.length}` };
  let maxDiff = 0, scale = 0, bad = 0;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= maxDiff)) maxDiff = Number.isNaN(d) ? Infinity : Math.max(maxDiff, d);
    scale = Math.max(scale, Math.abs(expected[i]));
    if (Number.isNaN(d)) bad++;
  }
  const rel = maxDiff / Math.max(scale, 1e-30);
  return { ok: bad === 0 && rel <= tol, detail: `${what} ${rel.toExponential(1)}` };
}

/** 48 output elements at seeded positions against the workload's float64 reference. */
function spotCheck(output, expected, tol) {
  const picked = [], want = [];
  let h = 0x9e3779b9;
  for (let i = 0; i < 48; i++) {
    h = Math.imul(h ^ (h >>> 16), 0x45d9f3b) >>> 0;
    const at = h % output.length;
    picked.push(output[at]);
    want.push(expected(at));
  }
  return compare(picked, want, tol, 'vs f64');
}

// ---------------------------------------------------------------------------------------------
// Progress: a bar on a terminal, one line per finished run otherwise (CI logs).

function createProgress(planned) {
  let total = planned;
  const tty = process.stderr.isTTY;
  let done = 0;
  const bar = tty
    ? new cliProgress.SingleBar({
      format: ' {bar} {value}/{total} runs | {task} | {samples} samples, {last}',
      stream: process.stderr, hideCursor: true, clearOnComplete: true, barsize: 24,
    }, cliProgress.Presets.shades_classic)
    : null;
  bar?.start(total, 0, { task: 'starting', samples: 0, last: '-' });
  return {
    cycle(task, samples, last) {
      bar?.update(done, { task, samples, last });
    },
    finished(task, samples) {
      done++;
      const last = samples.length ? formatMs(median(samples) * 1e3) : '-';
      if (bar) bar.update(done, { task, samples: samples.length, last });
      else process.stderr.write(`[${done}/${total}] ${task}: ${samples.length} samples, median ${last}\n`);
    },
    // A run planned but not made (a variant that failed or was cut to one call).
    drop(n) {
      total -= n;
      bar?.setTotal(total);
    },
    note(text) {
      if (bar) {
        process.stderr.clearLine?.(0);
        process.stderr.cursorTo?.(0);
      }
      process.stderr.write(`${text}\n`);
    },
    stop() {
      bar?.stop();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Variants of one workload in this process.

function jsPolicy(w) {
  if (opts['no-js']) return { mode: 'skip', reason: '--no-js' };
  if (opts['js-all']) return { mode: 'full' };
  if (w.js.mode === 'skip') return { mode: 'skip', reason: `${w.js.note}; --js-all runs it` };
  if (w.js.mode === 'once' && opts.quick) return { mode: 'skip', reason: `${w.js.note}; skipped with --quick` };
  return w.js;
}

/** Timed runs a workload is expected to make (the progress bar's share), before anything fails. */
function plannedRuns(w, ctx) {
  const per = (once) => (once ? 1 : timing.rounds);
  const js = jsPolicy(w).mode;
  return (ctx.nativeLoaded ? per(false) : 0) + (js === 'skip' ? 0 : per(js === 'once')) + (ctx.peer && w.peer ? per(false) : 0);
}

/** Builds the callable for a backend variant; an object-holding workload binds to the backend now. */
function bindOurs(api, w, data, backend) {
  api.useBackend(backend);
  const fn = w.ours(api, data);
  return () => {
    api.useBackend(backend);
    return fn();
  };
}

async function pickOrtCandidate(peer, specs, progress, w) {
  const sessions = [];
  for (const spec of specs) sessions.push(await peer.session(spec));
  if (sessions.length === 1) return { session: sessions[0], index: 0 };
  // A short interleaved trial (3 x 3 calls) decides which form onnxruntime runs fastest.
  const times = sessions.map(() => []);
  for (let round = 0; round < 3; round++) {
    for (const [i, s] of sessions.entries()) {
      await s.run();
      const t0 = process.hrtime.bigint();
      for (let j = 0; j < 3; j++) await s.run();
      times[i].push(Number(process.hrtime.bigint() - t0) / 3e9);
    }
  }
  const medians = times.map(median);
  const best = medians.indexOf(Math.min(...medians));
  progress.note(`  ${w.id} onnxruntime forms: ${sessions.map((s, i) => `${s.label} ${formatMs(medians[i] * 1e3)}`).join(', ')} -> ${sessions[best].label}`);
  sessions.forEach((s, i) => i !== best && s.release());
  return { session: sessions[best], index: best };
}

function childRun(w, variant, candidate) {
  const args = [fileURLToPath(import.meta.url), '--child', w.id, '--variant', variant, '--rounds', '1'];
  if (opts.threads) args.push('--threads', opts.threads);
  if (opts.quick) args.push('--quick');
  if (candidate !== undefined) args.push('--candidate', String(candidate));
  const r = spawnSync(process.execPath, ['--expose-gc', ...args], { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
  const last = r.stdout.trim().split('\n').pop();
  if (r.status !== 0 || !last?.startsWith('{')) {
    throw new Error(`child process for ${w.id} ${variant} failed (status ${r.status}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  }
  return JSON.parse(last);
}

async function runWorkload(w, ctx) {
  const { api, peer, limits, progress } = ctx;
  const result = { id: w.id, title: w.title, group: w.group, unit: w.unit, amount: w.amount, variants: {} };
  if (w.bytesPerToken) result.bytesPerToken = w.bytesPerToken;

  const missing = w.needs.filter((name) => typeof api[name] !== 'function');
  if (missing.length) {
    result.skipped = `needs ${missing.join(', ')} (not exported by the package yet)`;
    progress.drop(plannedRuns(w, ctx));
    return result;
  }
  const data = w.data();
  if (w.variantLabel) result.note = `ours: ${w.variantLabel(api)}`;
  if (w.setupNote) result.note = [result.note, w.setupNote].filter(Boolean).join('; ');

  // Each runnable variant: { fn, isAsync, output }.
  const runs = {};
  if (ctx.nativeLoaded) {
    try {
      runs.native = { fn: bindOurs(api, w, data, 'native') };
    } catch (err) {
      result.variants.native = { error: err.message };
    }
  } else {
    result.variants.native = { skipped: 'native addon not loaded (see backendInfo above)' };
  }
  const js = jsPolicy(w);
  if (js.mode === 'skip') {
    result.variants.js = { skipped: js.reason };
  } else {
    try {
      runs.js = { fn: bindOurs(api, w, data, 'js'), once: js.mode === 'once' };
    } catch (err) {
      result.variants.js = { error: err.message };
    }
  }
  let ortCandidate;
  if (peer && w.peer) {
    try {
      const picked = await pickOrtCandidate(peer, w.peer(peer, data), progress, w);
      ortCandidate = picked.index;
      runs.ort = { fn: picked.session.run, isAsync: true, label: picked.session.label, session: picked.session };
    } catch (err) {
      result.variants.ort = { error: err.message.split('\n')[0] };
    }
  } else if (ctx.peerReason) {
    result.variants.ort = { skipped: ctx.peerReason };
  } else if (peer) {
    result.variants.ort = { skipped: 'no onnxruntime equivalent' };
  }

  // Warm-up call per variant: JIT, first touch, lazy init; its output is what gets checked and
  // its duration decides the timing mode.
  for (const [v, run] of Object.entries(runs)) {
    try {
      const t0 = process.hrtime.bigint();
      run.output = run.isAsync ? await run.session.output() : run.fn();
      run.warmMs = Number(process.hrtime.bigint() - t0) / 1e6;
      if (run.output && !ArrayBuffer.isView(run.output)) run.output = run.output.data ?? run.output;
    } catch (err) {
      result.variants[v] = { error: err.message.split('\n')[0] };
      delete runs[v];
    }
  }
  // Calls of seconds get one sample per round (JS: one in all) so the whole run stays in minutes.
  if (runs.js && !runs.js.once && runs.js.warmMs > 3000) {
    runs.js.once = true;
    runs.js.label = `single call: ${(runs.js.warmMs / 1000).toFixed(1)} s in warm-up`;
  }
  progress.drop(plannedRuns(w, ctx) - Object.values(runs).reduce((n, run) => n + (run.once ? 1 : timing.rounds), 0));
  const checks = {};
  if (w.spot) {
    const expected = w.spot(data);
    for (const [v, run] of Object.entries(runs)) checks[v] = spotCheck(run.output, expected, w.tol);
  }
  const both = (a, b) => (a && b ? { ok: a.ok && b.ok, detail: `${a.detail}; ${b.detail}` } : a ?? b);
  if (runs.native && runs.js) checks.native = both(compare(runs.native.output, runs.js.output, w.tol, 'vs JS'), checks.native);
  if (runs.ort && (runs.native || runs.js)) {
    const ours = runs.native ?? runs.js;
    checks.ort = both(compare(runs.ort.output, ours.output, w.tol, `vs ${runs.native ? 'native' : 'JS'}`), checks.ort);
  }
  for (const v of Object.keys(runs)) runs[v].output = null;

  const samples = Object.fromEntries(Object.keys(runs).map((v) => [v, []]));
  const rss = {};
  const order = VARIANTS.filter((v) => runs[v]);
  if (w.child) {
    // One fresh process per variant and round, in rotating order like the in-process runs.
    for (let round = 0; round < timing.rounds; round++) {
      const rotated = order.map((_, i) => order[(i + round) % order.length]);
      for (const v of rotated) {
        if (!runs[v] || (runs[v].once && round > 0)) continue;
        const task = `${w.id} ${v} round ${round + 1}/${timing.rounds} (own process)`;
        try {
          const child = childRun(w, v, v === 'ort' ? ortCandidate : undefined);
          samples[v].push(...child.samples);
          if (!rss[v] || child.peakRssMB > rss[v].peakMB) {
            rss[v] = {
              peakMB: child.peakRssMB, baseMB: child.baseRssMB, deltaMB: child.peakRssMB - child.baseRssMB,
              scope: child.peakSinceStart ? 'whole child process' : 'first call (inputs ready, high-water mark reset)',
            };
          }
        } catch (err) {
          result.variants[v] = { error: err.message };
          progress.drop(runs[v].once ? 0 : timing.rounds - round - 1);
          delete runs[v];
        }
        progress.finished(task, samples[v] ?? []);
      }
    }
  } else {
    for (let round = 0; round < timing.rounds; round++) {
      // Rotate the order every round so no variant always runs right after another one.
      const rotated = order.map((_, i) => order[(i + round) % order.length]);
      for (const v of rotated) {
        const run = runs[v];
        if (!run || (run.once && round > 0)) continue;
        const task = `${w.id} ${v} round ${round + 1}/${timing.rounds}`;
        try {
          const got = await measure(task, run.fn, {
            isAsync: run.isAsync,
            slow: run.warmMs > 2,
            maxTime: run.once ? 0 : timing.maxTime,
            minSamples: run.once || run.warmMs > 1000 ? 1 : timing.minSamples,
            onCycle: (e) => progress.cycle(task, e.target.stats.sample.length, formatMs(e.target.times.period * 1e3)),
          });
          samples[v].push(...got);
        } catch (err) {
          result.variants[v] = { error: err.message.split('\n')[0] };
          delete runs[v];
          progress.drop(run.once ? 0 : timing.rounds - round - 1);
        }
        progress.finished(task, samples[v]);
        // Lets onnxruntime's spinning worker threads settle before the next variant runs.
        await sleep(20);
      }
    }
  }
  runs.ort?.session.release();

  for (const v of VARIANTS) {
    if (!runs[v] || !samples[v]?.length) continue;
    result.variants[v] = {
      label: runs[v].label ?? (v === 'js' && runs[v].once ? 'single call' : undefined),
      stats: summarize(w, samples[v], limits),
      check: checks[v],
      rss: rss[v],
      samplesMs: samples[v].map((s) => +(s * 1e3).toPrecision(5)),
    };
  }
  const ms = (v) => result.variants[v]?.stats?.medianMs;
  result.speedup = {
    vsJs: ms('native') && ms('js') ? ms('js') / ms('native') : null,
    vsOrt: ms('native') && ms('ort') ? ms('ort') / ms('native') : null,
  };
  return result;
}

// ---------------------------------------------------------------------------------------------
// Child mode: one variant of one workload, timed, with this process's peak RSS.

async function childMain() {
  const w = workloads.find((x) => x.id === opts.child);
  if (!w) throw new Error(`unknown workload ${opts.child}`);
  let fn, isAsync = false;
  if (opts.variant === 'ort') {
    const { loadOnnxRuntime, createPeer } = await import('./peers/onnxruntime.mjs');
    const loaded = await loadOnnxRuntime();
    if (loaded.error) throw new Error(loaded.error);
    const threads = opts.threads ? positiveInt(opts.threads, '--threads') : os.availableParallelism();
    const peer = createPeer(loaded.ort, { threads });
    // The spec holds its own copies of the inputs (onnxruntime's layout); ours are dropped and
    // collected below so they do not count in onnxruntime's RSS.
    const session = await peer.session(w.peer(peer, w.data())[Number(opts.candidate ?? 0)]);
    fn = session.run;
    isAsync = true;
  } else {
    const api = await loadPackage();
    if (opts.threads) api.setNumThreads(positiveInt(opts.threads, '--threads'));
    fn = bindOurs(api, w, w.data(), opts.variant);
  }
  // Peak RSS of the first call alone: inputs ready and garbage collected, the high-water mark
  // reset (Linux), one call. Later calls leave outputs for the GC to reclaim whenever it likes,
  // which says more about V8's heuristics than about the kernel.
  globalThis.gc?.();
  const hwmReset = resetPeakRss();
  const baseRssMB = process.memoryUsage().rss / 2 ** 20;
  const t0 = process.hrtime.bigint();
  if (isAsync) await fn();
  else fn();
  const slow = Number(process.hrtime.bigint() - t0) / 1e6 > 2;
  const peakRssMB = hwmReset ? peakRssSinceReset() : process.resourceUsage().maxRSS / 1024;
  const samples = [];
  for (let round = 0; round < timing.rounds; round++) {
    samples.push(...await measure(w.id, fn, { isAsync, slow, maxTime: timing.maxTime, minSamples: timing.minSamples }));
  }
  console.log(JSON.stringify({ samples, baseRssMB, peakRssMB, peakSinceStart: !hwmReset }));
}

/** Resets this process's RSS high-water mark (Linux >= 4.0: clear_refs "5"); false where unsupported. */
function resetPeakRss() {
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

function peakRssSinceReset() {
  const kb = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return kb ? Number(kb[1]) / 1024 : process.resourceUsage().maxRSS / 1024;
}

// ---------------------------------------------------------------------------------------------
// Machine limits. The best of many short trials: on a shared machine a short trial is more likely
// to find the cores free, and a trial can only be slowed down by others, never sped up. The FMA
// peak is the larger of all threads measured together and one thread times the thread count
// (each core has its own FMA units; the all-thread figure is lower only when a core is busy).
// Bandwidth is shared by the cores, so it is only measured with all threads.

function measureLimits(binding, threads) {
  const calls = opts.quick ? 2 : 4;
  let all = { gflops: 0 }, one = { gflops: 0 }, bandwidth = { gbps: 0 };
  for (let i = 0; i < calls; i++) {
    const a = binding._probePeak(threads, 0.03);
    const b = binding._probePeak(1, 0.03);
    const c = binding._probeBandwidth(threads, 256 * 2 ** 20);
    if (a.gflops > all.gflops) all = a;
    if (b.gflops > one.gflops) one = b;
    if (c.gbps > bandwidth.gbps) bandwidth = c;
  }
  return {
    peakGflops: Math.max(all.gflops, one.gflops * threads),
    peakAllThreads: all.gflops,
    peakOneThread: one.gflops,
    peakKernel: all.kernel,
    bandwidthGBps: bandwidth.gbps,
    bandwidthBytes: bandwidth.bytes,
    threads,
  };
}

// ---------------------------------------------------------------------------------------------

function commandLine() {
  const args = process.argv.slice(2);
  return `npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}`;
}

async function main() {
  const api = await loadPackage();
  if (opts.threads) api.setNumThreads(positiveInt(opts.threads, '--threads'));
  const info = api.backendInfo();
  const nativeLoaded = info.nativeLoaded;
  if (nativeLoaded) api.useBackend('native');
  const threads = api.getNumThreads();
  const cpu = os.cpus()[0]?.model?.trim() ?? 'unknown CPU';

  console.log(`node-attention bench — Node ${process.version}, ${cpu}, ${os.availableParallelism()} logical CPUs, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`);
  console.log(`backendInfo(): ${JSON.stringify({ ...api.backendInfo(), nativeError: info.nativeError ? '(below)' : null })}`);
  if (!nativeLoaded) console.log(`native not loaded:\n${info.nativeError}`);
  console.log(`timing: ${timing.rounds} interleaved round(s) per variant, maxTime ${timing.maxTime} s, ` +
    `minSamples ${timing.minSamples}; figures are medians of all samples`);

  const loadBefore = os.loadavg()[0];
  if (loadBefore > os.availableParallelism()) {
    console.log(`warning: load average ${loadBefore.toFixed(1)} on ${os.availableParallelism()} CPUs: other work is running, ` +
      'so times are inflated and the limits below are underestimated');
  }
  const binding = nativeLoaded ? nativeBinding(api) : null;
  const limits = binding && typeof binding._probePeak === 'function' ? measureLimits(binding, threads) : null;
  if (limits) {
    console.log(`machine limits (${threads} threads): FP32 FMA peak ${limits.peakGflops.toFixed(1)} GFLOP/s (${limits.peakKernel} loop; ` +
      `${limits.peakAllThreads.toFixed(1)} measured on ${threads} threads together, ${limits.peakOneThread.toFixed(1)} on one), ` +
      `read bandwidth ${limits.bandwidthGBps.toFixed(1)} GB/s (256 MiB streaming sum)`);
  } else {
    console.log('machine limits: not measured (the native probe needs the addon); "% limit" is left out');
  }

  let peer = null, peerReason = null, ortVersion = null;
  if (opts.peers) {
    const { loadOnnxRuntime, createPeer } = await import('./peers/onnxruntime.mjs');
    const loaded = await loadOnnxRuntime();
    if (loaded.error) {
      peerReason = loaded.error;
      console.log(`peers: ${peerReason}`);
    } else {
      ortVersion = loaded.version;
      peer = createPeer(loaded.ort, { threads });
      console.log(`peers: onnxruntime-node ${ortVersion}, intraOpNumThreads ${threads}, outputs checked against ours before timing`);
    }
  }

  const chosen = workloads.filter(selected);
  if (chosen.length === 0) {
    console.error(`no workload matches ${filters.join(' ')}; --list shows them`);
    process.exit(2);
  }
  const ctx = { api, peer, peerReason, limits, nativeLoaded };
  ctx.progress = createProgress(chosen.reduce((n, w) => n + plannedRuns(w, ctx), 0));
  const { progress } = ctx;
  const results = [];
  const started = Date.now();
  for (const w of chosen) {
    const r = await runWorkload(w, ctx);
    if (r.skipped) progress.note(`${w.id}: skipped, ${r.skipped}`);
    for (const [v, x] of Object.entries(r.variants)) {
      if (x.check && !x.check.ok) progress.note(`${w.id} ${v}: output MISMATCH (${x.check.detail})`);
      if (x.error) progress.note(`${w.id} ${v}: error: ${x.error}`);
    }
    results.push(r);
  }
  // A workload with a baseline (A3h: the F16 cache against A3k's F32 one; G3 against G3s) reports
  // the baseline's native median over its own, both measured in this run.
  for (const r of results) {
    const w = chosen.find((x) => x.id === r.id), base = results.find((x) => x.id === w.baseline);
    const mine = r.variants?.native?.stats?.medianMs, theirs = base?.variants?.native?.stats?.medianMs;
    if (r.speedup && mine && theirs) r.speedup.vsBaseline = { id: base.id, ratio: theirs / mine };
  }
  progress.stop();
  if (nativeLoaded) api.useBackend('native');

  console.log('');
  console.log(formatTable(results));
  console.log(`\n${((Date.now() - started) / 1000).toFixed(0)} s. speedup = JS or onnxruntime median / native median; ` +
    '% limit = rate / measured FMA peak (GFLOP/s) or read bandwidth (GB/s; tok/s against bandwidth / weight bytes).');

  const meta = {
    date: new Date().toISOString(),
    command: commandLine(),
    node: process.version,
    machine: { cpu, logicalCpus: os.availableParallelism(), memGiB: +(os.totalmem() / 2 ** 30).toFixed(1), platform: `${process.platform}-${process.arch}` },
    backendInfo: { ...api.backendInfo(), nativeError: info.nativeError },
    threads,
    limits,
    onnxruntime: ortVersion,
    timing,
    loadAverage: { before: +loadBefore.toFixed(2), after: +os.loadavg()[0].toFixed(2) },
  };
  const doc = { meta, workloads: results };
  const file = opts.json ? path.resolve(opts.json) : resultsPath(path.join(here, 'results'), meta);
  writeJson(file, doc);
  const chart = file.replace(/\.json$/, '') + '.svg';
  fs.writeFileSync(chart, renderChart(doc));
  console.log(`results: ${path.relative(process.cwd(), file)}; chart: ${path.relative(process.cwd(), chart)}`);
  console.log(`README table and bench/results/chart.svg from these results: node scripts/perf-table.mjs ${path.relative(root, file)}`);

  if (opts.peers && nativeLoaded && chosen.some((w) => w.group === 'matmul')) {
    meta.numpy = await compareNumpy(api, threads);
    writeJson(file, doc);
  }
  // node-llama-cpp for G1, G1h and G4: own processes, after ours (bench/peers/llama-cpp.mjs).
  if (opts.peers) {
    const { runLlamaCppPeer } = await import('./peers/llama-cpp.mjs');
    meta.llamaCpp = await runLlamaCppPeer({ ids: chosen.map((w) => w.id), threads, quick: opts.quick, results });
    writeJson(file, doc);
  }

  const failed = results.some((r) => Object.values(r.variants).some((x) => x.check && !x.check.ok));
  if (failed) {
    console.error('some outputs disagree (MISMATCH above): the figures for those rows are not comparable');
    process.exitCode = 1;
  }
}

/**
 * GEMM against numpy's BLAS, both into preallocated outputs, alternating ours and numpy's rounds:
 * M1, M3s and M4's shapes. Returns what it measured (or why it could not) for the results JSON.
 */
async function compareNumpy(api, threads) {
  const { findNumpy, numpyGemm } = await import('./peers/numpy.mjs');
  const found = findNumpy();
  if (!found) {
    console.log('numpy: not found (python3 with numpy, e.g. Debian python3-numpy + libopenblas0): skipped');
    return { skipped: 'python3 with numpy not found' };
  }
  const shapes = [['M1', 1024, 1024, 1024, 7, 15], ['M3s', 2048, 2048, 2048, 8, 5], ['M4', 1280, 512, 64, 9, 200]];
  const rows = [];
  let blas = '?';
  for (let round = 0; round < 3; round++) {
    for (const [id, m, k, n, seed, reps] of shapes) {
      const a = { data: Float32Array.from({ length: m * k }, (_, i) => ((i * 7919 + seed) % 1000) / 1000), dims: [m, k] };
      const b = { data: Float32Array.from({ length: k * n }, (_, i) => ((i * 104729 + seed) % 1000) / 1000), dims: [k, n] };
      const out = new Float32Array(m * n);
      api.matmul(a, b, { out });
      const ts = [];
      for (let i = 0; i < reps; i++) {
        const t0 = process.hrtime.bigint();
        api.matmul(a, b, { out });
        ts.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      ts.sort((x, y) => x - y);
      const np = numpyGemm(found.python, threads, [[m, k, n, seed]], reps);
      blas = np.blas;
      let corner = 0;
      for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) corner += out[i * n + j];
      if (Math.abs(corner - np.results[0].checksum) > 1e-4 * Math.abs(corner)) {
        throw new Error(`numpy peer: ${id} outputs differ (corner sums ${corner} and ${np.results[0].checksum})`);
      }
      rows.push({ id, round, ours: ts[reps >> 1], numpy: np.results[0].ms, gflop: (2 * m * k * n) / 1e9 });
    }
  }
  const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const summary = shapes.map(([id]) => {
    const r = rows.filter((x) => x.id === id);
    const ours = median(r.map((x) => x.ours)), numpy = median(r.map((x) => x.numpy));
    return { id, oursMs: +ours.toFixed(3), numpyMs: +numpy.toFixed(3), oursGflops: +(r[0].gflop / ours * 1e3).toFixed(1),
      numpyGflops: +(r[0].gflop / numpy * 1e3).toFixed(1), speedup: +(numpy / ours).toFixed(2) };
  });
  console.log(`\nnumpy ${found.version} (BLAS: ${blas}, ${threads} threads), GEMM into a preallocated output, medians of 3 alternating rounds:`);
  for (const s of summary) {
    console.log(`  ${s.id.padEnd(4)} ours ${s.oursMs} ms (${s.oursGflops} GFLOP/s)  numpy ${s.numpyMs} ms (${s.numpyGflops} GFLOP/s)  ours ${s.speedup}x numpy`);
  }
  return { version: found.version, blas, threads, results: summary };
}

(opts.child ? childMain() : main()).catch((err) => {
  console.error(err.stack ?? err);
  process.exit(1);
});
