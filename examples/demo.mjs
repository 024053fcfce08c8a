// The seeds' walk through attention, on real sizes, on the native and JS backends side by side:
//   1. one causal attention head: x [32, 40, 512] -> Q, K, V [32, 40, 64] -> attention -> [32, 40, 64]
//   2. a real 8-head layer (MultiHeadAttention with its output projection) on the same x
//   3. the "baby transformer": tokens [2, 10] -> logits [2, 10, 1000], as a 1-layer GPT
//   4. text-free generation from a random GPT, tokens/s per backend
//   5. the same from a random Llama-shaped model (RoPE, RMSNorm, SwiGLU, grouped-query attention)
// Run: npm run demo   (builds dist/ first)
import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';

const USAGE = `Usage: node examples/demo.mjs [options]

Walks through attention on real sizes, timing the native and JS backends side by side: one
causal head, an 8-head layer, a 1-layer GPT forward pass, and KV-cached generation from a random
GPT and a random Llama (the native column only when the addon loaded).

Options:
  -h, --help     print this help and exit
`;
try {
  if (parseArgs({ options: { help: { type: 'boolean', short: 'h' } } }).values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
} catch (err) {
  process.stderr.write(`${err.message}\n\n${USAGE}`);
  process.exit(1);
}

// Imported after the arguments are read, so --help works before the package is built.
const {
  GPT, Llama, MultiHeadAttention, attention, backendInfo, linear, matmul, useBackend,
} = await import('../dist/index.mjs');

const info = backendInfo();
const backends = info.nativeLoaded ? ['native', 'js'] : ['js'];
console.log(`node-attention demo — Node ${process.version}; native: ${info.nativeLoaded ? `${info.simd}, ${info.threads} threads` : 'not loaded (JS only)'}`);
if (!info.nativeLoaded) console.log(info.nativeError);
const load = loadavg()[0], cpus = availableParallelism();
if (load > cpus / 2) console.log(`note: load average ${load.toFixed(1)} on ${cpus} CPUs; timings below are shared with other work (fewer threads help: setNumThreads)`);

/** mulberry32 uniform values in [-scale, scale). */
function randomArray(length, seed, scale = 1) {
  let s = seed >>> 0;
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}
const tensor = (data, dims) => ({ data, dims });

/** Runs fn once to warm up, then `repeat` times; returns the last result and the median ms. */
function timed(fn, repeat = 3) {
  let result = fn();
  const times = [];
  for (let i = 0; i < repeat; i++) {
    const start = performance.now();
    result = fn();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return { result, ms: times[Math.floor(times.length / 2)] };
}

function maxAbsDiff(a, b) {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

function row(label, cells) {
  console.log(`  ${label.padEnd(34)}${cells.map((c) => c.padStart(16)).join('')}`);
}

// ---------------------------------------------------------------------------------------------
console.log('\n1. One causal attention head (seed: attention_demo.py)');
const B = 32, S = 40, E = 512, HD = 64;
const x = tensor(randomArray(B * S * E, 1), [B, S, E]);
const proj = (seed) => ({ w: tensor(randomArray(E * HD, seed, 1 / Math.sqrt(E)), [E, HD]), b: randomArray(HD, seed + 1, 0.1) });
const [pq, pk, pv] = [proj(10), proj(20), proj(30)];
row('', backends);
const head = {};
for (const name of backends) {
  useBackend(name);
  head[name] = timed(() => {
    const q = linear(x, pq.w, pq.b), k = linear(x, pk.w, pk.b), v = linear(x, pv.w, pv.b);
    return attention(q, k, v, { isCausal: true, qNumHeads: 1, kvNumHeads: 1 }).y;
  });
}
console.log(`  Q = x @ wq + bq, K, V: ${JSON.stringify([B, S, HD])}; y = softmax(QK^T/sqrt(64) + causal mask) V: ${JSON.stringify(head[backends[0]].result.dims)}`);
row('projections + attention (ms)', backends.map((n) => head[n].ms.toFixed(2)));
// The seed's step-by-step version on batch entry 0: scores, mask, softmax, weighted sum.
useBackend('js');
{
  const x0 = tensor(x.data.subarray(0, S * E), [S, E]);
  const q = linear(x0, pq.w, pq.b), k = linear(x0, pk.w, pk.b), v = linear(x0, pv.w, pv.b);
  const scores = matmul(q, k, { transB: true }).data;
  for (let i = 0; i < S; i++) {
    let max = -Infinity, sum = 0;
    for (let j = 0; j < S; j++) {
      scores[i * S + j] = j > i ? -Infinity : scores[i * S + j] / Math.sqrt(HD);
      max = Math.max(max, scores[i * S + j]);
    }
    for (let j = 0; j < S; j++) sum += scores[i * S + j] = Math.exp(scores[i * S + j] - max);
    for (let j = 0; j < S; j++) scores[i * S + j] /= sum;
  }
  const stepByStep = matmul(tensor(scores, [S, S]), v).data;
  for (const name of backends) {
    console.log(`  ${name}: max |attention() - step-by-step| on batch 0 = ${maxAbsDiff(head[name].result.data.subarray(0, S * HD), stepByStep).toExponential(2)}`);
  }
}

// ---------------------------------------------------------------------------------------------
console.log('\n2. An 8-head attention layer with output projection (the seed concatenated 8 copies of one head; here 8 real heads)');
const H = 8;
const w = (seed, rows, cols) => tensor(randomArray(rows * cols, seed, 1 / Math.sqrt(rows)), [rows, cols]);
const layerWeights = {
  wq: w(40, E, E), wk: w(41, E, E), wv: w(42, E, E), wo: w(43, E, E),
  bq: tensor(randomArray(E, 44, 0.1), [E]), bk: tensor(randomArray(E, 45, 0.1), [E]), bv: tensor(randomArray(E, 46, 0.1), [E]), bo: tensor(randomArray(E, 47, 0.1), [E]),
};
const mha = {};
for (const name of backends) {
  useBackend(name);
  const layer = new MultiHeadAttention({ numHeads: H }, layerWeights);
  mha[name] = timed(() => layer.forward(x), 2);
}
console.log(`  x ${JSON.stringify(x.dims)} -> 8 heads of 64 -> z ${JSON.stringify(mha[backends[0]].result.dims)}`);
row('', backends);
row('layer forward (ms)', backends.map((n) => mha[n].ms.toFixed(2)));
row('GFLOP/s', backends.map((n) => ((2 * B * S * E * E * 4 + 2 * B * H * S * S * HD) / mha[n].ms / 1e6).toFixed(2)));
if (backends.length === 2) console.log(`  native vs JS: max abs difference ${maxAbsDiff(mha.native.result.data, mha.js.result.data).toExponential(2)}`);

// ---------------------------------------------------------------------------------------------
console.log('\n3. The baby transformer, grown into GPT-2 form (1 layer, 64 wide, 1 head, vocab 1000)');
const babyConfig = { vocab_size: 1000, n_positions: 10, n_embd: 64, n_layer: 1, n_head: 1 };
const tokens = Int32Array.from(randomArray(20, 99), (u) => Math.floor((u + 1) * 500));
const baby = {};
for (const name of backends) {
  useBackend(name);
  const model = GPT.random(babyConfig, 5);
  baby[name] = timed(() => model.forward(tokens, { batch: 2 }));
}
console.log(`  tokens [2, 10] -> logits ${JSON.stringify(baby[backends[0]].result.dims)} (the seed printed torch.Size([2, 10, 1000]))`);
console.log('  pre-LayerNorm block with residuals and GELU MLP (GPT-2 uses 4 x 64 = 256 hidden, the seed 128), LM head tied to the embedding');
row('', backends);
row('forward (ms)', backends.map((n) => baby[n].ms.toFixed(2)));

// ---------------------------------------------------------------------------------------------
const genConfig = { vocab_size: 8192, n_positions: 256, n_embd: 384, n_layer: 6, n_head: 6 };
const params = genConfig.vocab_size * genConfig.n_embd + genConfig.n_positions * genConfig.n_embd + genConfig.n_layer * 12 * genConfig.n_embd ** 2;
console.log(`\n4. Generation from a random GPT (${genConfig.n_layer} layers, ${genConfig.n_embd} wide, ${genConfig.n_head} heads, vocab ${genConfig.vocab_size}, ~${(params / 1e6).toFixed(1)}M parameters), KV-cached`);
console.log('  sampling with temperature 1, top-k 40, seed 7 (greedy decoding of random weights just repeats one token)');
const prompt = [17, 4242, 99, 1234, 7, 300, 5000, 42];
const NEW = 32;

/** Generates NEW tokens from a model built per backend; prints ms, tokens/s and whether the backends agree. */
function generation(build) {
  const gen = {};
  for (const name of backends) {
    useBackend(name);
    const model = build();
    const start = performance.now();
    const out = model.generate(prompt, { maxNewTokens: NEW, temperature: 1, topK: 40, seed: 7 });
    gen[name] = { ms: performance.now() - start, out };
  }
  row('', backends);
  row(`generate ${NEW} tokens after ${prompt.length} (ms)`, backends.map((n) => gen[n].ms.toFixed(0)));
  row('tokens/s', backends.map((n) => (NEW / (gen[n].ms / 1000)).toFixed(1)));
  console.log(`  first tokens: ${Array.from(gen[backends[0]].out.subarray(0, 12)).join(' ')} ...`);
  if (backends.length === 2) {
    const same = gen.native.out.every((t, i) => t === gen.js.out[i]);
    console.log(`  native and JS sampled ${same ? 'the same' : 'different'} tokens${same ? '' : ' (float32 rounding differs between backends, and a draw near a boundary can go either way)'}`);
  }
}
generation(() => GPT.random(genConfig, 2024));

// ---------------------------------------------------------------------------------------------
const llamaConfig = {
  vocab_size: 8192, hidden_size: 384, intermediate_size: 1024, num_hidden_layers: 6, num_attention_heads: 6,
  num_key_value_heads: 2, max_position_embeddings: 256, rope_theta: 10000,
};
console.log(`\n5. Generation from a random Llama (${llamaConfig.num_hidden_layers} layers, ${llamaConfig.hidden_size} wide, ` +
  `${llamaConfig.num_attention_heads} query heads over ${llamaConfig.num_key_value_heads} kv heads, RoPE, RMSNorm, SwiGLU), KV-cached`);
generation(() => Llama.random(llamaConfig, 2024));
console.log('\nNext: node examples/heatmap.mjs writes an attention heatmap (SVG) of one head.');
