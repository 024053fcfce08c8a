// One workload of the llama.cpp peer (bench/peers/llama-cpp.mjs starts it in its own process, with
// UV_THREADPOOL_SIZE=1): builds the library's random model, writes it as GGUF to the path it is given,
// checks node-llama-cpp's greedy tokens and next-token probabilities against ours, then times both in
// alternating rounds (decode: tokens 2..n+1 of a greedy generation after a prompt; prefill: one
// prompt). The last line of stdout is the JSON result; the parent deletes the GGUF file.
//
// argv[2]: JSON { id, arch: 'gpt2' | 'llama', config, dtype, seed, file, threads, decode: { prompt,
// tokens, runs }, prefill: { tokens, runs }, kvType }
import * as path from 'node:path';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { writeGpt2Gguf, writeLlamaGguf } from '../gguf.mjs';

const spec = JSON.parse(process.argv[2]);
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const now = () => performance.now();
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const note = (text) => process.stderr.write(`  ${spec.id} llama.cpp: ${text}\n`);
const V = spec.config.vocab_size;
const ids = (n, salt) => Array.from({ length: n }, (_, i) => (i * 7919 + salt) % V);

let stage = 'ours';

async function main() {
  const api = await import(pathToFileURL(path.join(root, 'dist', 'index.mjs')).href);
  api.setNumThreads(spec.threads);
  if (api.backendInfo().nativeLoaded) api.useBackend('native');

  let t0 = now();
  const Model = spec.arch === 'gpt2' ? api.GPT : api.Llama;
  let model = Model.random(spec.config, spec.seed, { dtype: spec.dtype });
  const built = now() - t0;
  t0 = now();
  const write = spec.arch === 'gpt2' ? writeGpt2Gguf : writeLlamaGguf;
  const bytes = write(spec.file, model.config ?? spec.config, model.namedWeights(), spec.dtype);
  globalThis.gc?.();
  note(`model built in ${(built / 1e3).toFixed(1)} s, ${(bytes / 2 ** 20).toFixed(0)} MiB GGUF written in ${((now() - t0) / 1e3).toFixed(1)} s`);

  // Our reference: 8 greedy tokens and the next-token distribution after the check prompt (the
  // workload's decode prompt).
  const prompt = ids(spec.decode.prompt, 0);
  const oursTokens = [...model.generate(prompt, { maxNewTokens: 8, eosTokenId: null })];
  const logits = (() => {
    const dec = model.decoder(prompt.length);
    try {
      return dec.append(prompt).data;
    } finally {
      dec.dispose();
    }
  })();
  const oursProbs = softmax(logits);

  // The peer.
  stage = 'load';
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  const logs = [];
  const llama = await getLlama({
    gpu: false, build: 'never', maxThreads: spec.threads, logLevel: LlamaLogLevel.debug,
    logger: (level, message) => logs.push(message),
    progressLogs: false, skipDownload: true,
  });
  stage = 'model';
  const peerModel = await llama.loadModel({ modelPath: spec.file, gpuLayers: 0 });
  const contextSize = Math.max(spec.decode.prompt + spec.decode.tokens + 1, spec.prefill.tokens);
  const ctxOpts = { contextSize, batchSize: contextSize, threads: spec.threads, flashAttention: 'auto' };
  let context, kvType = spec.kvType;
  try {
    context = await peerModel.createContext({ ...ctxOpts, experimentalKvCacheKeyType: kvType, experimentalKvCacheValueType: kvType });
  } catch (err) {
    note(`a ${kvType} KV cache failed (${err.message.split('\n')[0]}); using its default`);
    kvType = null;
    context = await peerModel.createContext(ctxOpts);
  }
  const seq = context.getSequence();

  stage = 'run';
  // Check: the same greedy tokens and next-token probabilities.
  await seq.clearHistory();
  const res = await seq.controlledEvaluate([...prompt.slice(0, -1), [prompt.at(-1), { generateNext: { token: true, probabilities: true } }]]);
  const peerProbs = res.at(-1)?.next?.probabilities;
  const peerTokens = [];
  await seq.clearHistory();
  for await (const t of seq.evaluate(prompt, { temperature: 0 })) {
    peerTokens.push(t);
    if (peerTokens.length >= 8) break;
  }

  // What llama.cpp logged while loading and on the first evaluations (the log arrives through
  // libuv, a little late), then quiet: per-token debug logging would cost time.
  await new Promise((r) => setTimeout(r, 100));
  llama.logLevel = LlamaLogLevel.warn;
  const log = logs.join('\n');
  const cache = /K \((\w+)\):[^,]*, V \((\w+)\)/.exec(log);
  const flash = /Flash Attention (?:was auto, set to )?(enabled|disabled)/i.exec(log)?.[1] ??
    `${/flash_attn\s*=\s*(auto|enabled|disabled|true|false|[01])/.exec(log)?.[1] ?? '?'} (not resolved in the log)`;
  const cpuBackend = /libggml-cpu-(\w+)\.so/.exec(log)?.[1] ?? null;
  const setup = {
    kvCache: cache ? `K ${cache[1]}, V ${cache[2]}` : kvType ?? 'default (F16)',
    flashAttention: flash,
    threads: context.currentThreads ?? spec.threads,
    contextSize: context.contextSize,
    batchSize: context.batchSize,
    cpuVariant: cpuBackend,
  };
  const check = { oursTokens, peerTokens, tokensEqual: oursTokens.join() === peerTokens.join() };
  if (peerProbs) {
    let maxDiff = 0;
    for (let t = 0; t < V; t++) maxDiff = Math.max(maxDiff, Math.abs((peerProbs.get(t) ?? 0) - oursProbs[t]));
    const oursTop = topK(oursProbs, 5);
    const peerTop = [...peerProbs.keys()].slice(0, 5);
    check.probsMaxAbsDiff = maxDiff;
    check.probsMaxRelDiff = maxDiff / oursProbs[oursTop[0]];
    check.oursTop5 = oursTop;
    check.peerTop5 = peerTop;
    check.top5Overlap = peerTop.filter((t) => oursTop.includes(t)).length;
  }
  note(`check: tokens ${check.tokensEqual ? 'equal' : 'DIFFER'} (ours ${oursTokens.join(' ')} | peer ${peerTokens.join(' ')}), ` +
    `next-token probabilities max diff ${check.probsMaxRelDiff?.toExponential(1) ?? '?'} of the top one, top-5 overlap ${check.top5Overlap ?? '?'}/5`);

  // Timing, ours and the peer alternating (the order swapped every round).
  const n = spec.decode.tokens;
  const oursDecode = () => {
    const at = [];
    model.generate(prompt, { maxNewTokens: n + 1, eosTokenId: null, onToken: () => { at.push(now()); } });
    return n / ((at[n] - at[0]) / 1e3);
  };
  const peerDecode = async () => {
    await seq.clearHistory();
    const at = [];
    for await (const _ of seq.evaluate(prompt, { temperature: 0 })) {
      at.push(now());
      if (at.length > n) break;
    }
    if (at.length <= n) throw new Error(`node-llama-cpp stopped after ${at.length} tokens`);
    return n / ((at[n] - at[0]) / 1e3);
  };
  const long = ids(spec.prefill.tokens, 13);
  const oursPrefill = () => {
    const dec = model.decoder(long.length);
    try {
      const t = now();
      dec.append(long);
      return long.length / ((now() - t) / 1e3);
    } finally {
      dec.dispose();
    }
  };
  const peerPrefill = async () => {
    await seq.clearHistory();
    const t = now();
    await seq.evaluateWithoutGeneratingNewTokens(long);
    return long.length / ((now() - t) / 1e3);
  };
  const rates = { oursDecode: [], peerDecode: [], oursPrefill: [], peerPrefill: [] };
  const loadBefore = os.loadavg()[0];
  // One untimed warm-up of each (first touch of the weights, lazy init).
  oursDecode();
  await peerDecode();
  for (let r = 0; r < Math.max(spec.decode.runs, spec.prefill.runs); r++) {
    const pairs = [];
    if (r < spec.decode.runs) pairs.push([['oursDecode', oursDecode], ['peerDecode', peerDecode]]);
    if (r < spec.prefill.runs) pairs.push([['oursPrefill', oursPrefill], ['peerPrefill', peerPrefill]]);
    for (const pair of pairs) {
      for (const [name, fn] of r % 2 ? pair.reverse() : pair) rates[name].push(await fn());
    }
  }
  const summary = Object.fromEntries(Object.entries(rates).map(([k, xs]) => [k, { median: median(xs), runs: xs.map((x) => +x.toFixed(2)) }]));
  const loadAverage = { before: +loadBefore.toFixed(2), after: +os.loadavg()[0].toFixed(2) };

  await context.dispose();
  await peerModel.dispose();
  await llama.dispose();
  model = null;
  console.log(JSON.stringify({ id: spec.id, fileBytes: bytes, version: llamaVersion(), setup, check, rates: summary, loadAverage }));
}

function llamaVersion() {
  try {
    const entry = fileURLToPath(import.meta.resolve('node-llama-cpp'));
    return JSON.parse(fs.readFileSync(path.join(path.dirname(entry), '..', 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

function softmax(logits) {
  let max = -Infinity;
  for (const x of logits) max = Math.max(max, x);
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += out[i] = Math.exp(logits[i] - max);
  for (let i = 0; i < out.length; i++) out[i] /= sum;
  return out;
}

function topK(p, k) {
  return [...p.keys()].sort((a, b) => p[b] - p[a] || a - b).slice(0, k);
}

// A failure is a result too (the parent prints its first line and goes on): stage 'load' means
// node-llama-cpp itself did not load, so the parent skips the other workloads.
main().then(() => process.exit(0), (err) => {
  console.error(err.stack ?? String(err));
  console.log(JSON.stringify({ id: spec.id, stage, error: String(err?.message ?? err).split('\n')[0] }));
  process.exit(1);
});
