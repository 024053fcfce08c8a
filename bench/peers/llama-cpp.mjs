// node-llama-cpp (llama.cpp's CPU backend) as a peer for the model workloads G1 (GPT-2 small, F32),
// G1h (the same, F16) and G4 (TinyLlama-1.1B-shaped Llama, F16): `npm run bench -- --peers`.
//
// Each workload runs in its own process (bench/peers/llama-cpp-child.mjs) with UV_THREADPOOL_SIZE=1:
// node-llama-cpp evaluates on libuv's pool, and with Node's default pool of 4 its per-token work
// collides with ggml's own threads on a small machine (~35% slower on 2 cores). The child builds
// the library's random model with the workload's seed, writes it as GGUF (bench/gguf.mjs) to
// os.tmpdir() (deleted here afterwards, whatever happened), checks that node-llama-cpp's 8 greedy
// tokens and next-token probabilities match ours, then times ours and node-llama-cpp in alternating
// rounds with one protocol: decode = tokens 2..33 of a greedy generation after a 32-token prompt
// (the workload's context), per token, sampling included; prefill = one 128-token prompt.
// node-llama-cpp gets an F32 KV cache like ours (its default is F16), flash attention left on
// 'auto', threads = the bench's --threads.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

const GPT2_SMALL = { vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12, layer_norm_epsilon: 1e-5 };
const TINYLLAMA = {
  vocab_size: 32000, hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 22, num_attention_heads: 32,
  num_key_value_heads: 4, rms_norm_eps: 1e-5, rope_theta: 10000, max_position_embeddings: 2048, tie_word_embeddings: false,
};

// The workloads' models (bench/workloads.mjs: seed 1234, context 32). Runs per workload: the
// number of timed decode and prefill rounds (each round one of ours and one of node-llama-cpp's).
const PEER_WORKLOADS = [
// tol: the largest next-token probability difference (relative to the top one) that passes; F32
// must also give the same greedy tokens (F16: llama.cpp rounds activations to F16 for F16 weights,
// so a near tie may go the other way).
  { id: 'G1', label: 'GPT-2 small F32', arch: 'gpt2', config: GPT2_SMALL, dtype: 'F32', runs: [7, 5], quick: [5, 3], timeoutS: 150, tol: 1e-2 },
  { id: 'G1h', label: 'GPT-2 small F16', arch: 'gpt2', config: GPT2_SMALL, dtype: 'F16', runs: [7, 5], quick: [5, 3], timeoutS: 150, tol: 3e-2 },
  { id: 'G4', label: 'TinyLlama F16', arch: 'llama', config: TINYLLAMA, dtype: 'F16', runs: [5, 3], quick: [3, 2], timeoutS: 360, tol: 3e-2 },
];
const SEED = 1234;
const CONTEXT = 32;
const PREFILL = 128;

/** Why node-llama-cpp cannot run here, or null. */
function unavailable() {
  try {
    import.meta.resolve('node-llama-cpp');
    return null;
  } catch (err) {
    return `node-llama-cpp not installed (${err.code ?? err.message.split('\n')[0]})`;
  }
}

/**
 * Runs node-llama-cpp for the selected workloads among G1, G1h and G4 and prints one table.
 * @param {{ids: string[], threads: number, quick: boolean, results: object[]}} o ids: the selected
 *   workload ids; results: the bench's results (their native decode rate is printed next to ours)
 * @returns {object} what it measured, or why it did not, for the results JSON
 */
export async function runLlamaCppPeer({ ids, threads, quick, results }) {
  const todo = PEER_WORKLOADS.filter((w) => ids.includes(w.id));
  if (todo.length === 0) return { skipped: 'none of G1, G1h, G4 selected' };
  const why = unavailable();
  if (why) {
    console.log(`\nnode-llama-cpp: ${why}; skipped`);
    return { skipped: why };
  }
  console.log(`\nnode-llama-cpp: ${todo.map((w) => w.id).join(', ')}, each in its own process (UV_THREADPOOL_SIZE=1), ` +
    `${threads} threads; the GGUF is written from the same random weights (seed ${SEED})`);
  const rows = [];
  let version = null, setup = null;
  for (const w of todo) {
    const file = path.join(os.tmpdir(), `node-attention-bench-${w.id}-${process.pid}.gguf`);
    const [decodeRuns, prefillRuns] = quick ? w.quick : w.runs;
    const spec = {
      id: w.id, arch: w.arch, config: w.config, dtype: w.dtype, seed: SEED, file, threads, kvType: 'F32',
      decode: { prompt: CONTEXT, tokens: 32, runs: decodeRuns }, prefill: { tokens: PREFILL, runs: prefillRuns },
    };
    let r;
    try {
      const child = spawnSync(process.execPath, ['--expose-gc', path.join(here, 'llama-cpp-child.mjs'), JSON.stringify(spec)], {
        encoding: 'utf8', maxBuffer: 16 << 20, stdio: ['ignore', 'pipe', 'inherit'], timeout: w.timeoutS * 1e3,
        env: { ...process.env, UV_THREADPOOL_SIZE: '1' },
      });
      const last = child.stdout?.trim().split('\n').pop();
      r = last?.startsWith('{') ? JSON.parse(last) : null;
      if (!r) r = { id: w.id, error: child.error?.code === 'ETIMEDOUT' ? `timed out after ${w.timeoutS} s` : `child exited with status ${child.status ?? child.signal}` };
    } finally {
      fs.rmSync(file, { force: true });
    }
    if (r.error) {
      console.log(`  ${w.id}: node-llama-cpp ${r.stage === 'load' ? 'did not load' : 'failed'}: ${r.error}`);
      rows.push({ id: w.id, error: r.error, stage: r.stage });
      if (r.stage === 'load') break;
      continue;
    }
    version ??= r.version;
    setup ??= r.setup;
    const bench = results.find((x) => x.id === w.id)?.variants?.native?.stats;
    const c = r.check;
    r.check.ok = (c.tokensEqual || w.dtype !== 'F32') && (c.probsMaxRelDiff ?? 0) <= w.tol;
    rows.push({ ...r, label: w.label, benchNativeTokS: bench?.rate ?? null });
  }
  const ok = rows.filter((r) => !r.error);
  if (ok.length) printTable(ok, version, setup);
  if (ok.some((r) => !r.check.ok)) {
    console.error('node-llama-cpp\'s outputs disagree with ours (MISMATCH above): its figures are not comparable');
    process.exitCode = 1;
  }
  return { version, threads, setup, protocol: { context: CONTEXT, decodeTokens: 32, prefillTokens: PREFILL, seed: SEED }, workloads: rows };
}

function printTable(rows, version, setup) {
  const f = (x) => (x == null ? '-' : x >= 100 ? x.toFixed(0) : x.toFixed(1));
  const ratio = (a, b) => (a && b ? `${(a / b).toFixed(2)}x` : '-');
  console.log(`node-llama-cpp ${version}: llama.cpp CPU backend${setup.cpuVariant ? ` (${setup.cpuVariant})` : ''}, ` +
    `${setup.threads} threads, KV cache ${setup.kvCache} (ours F32), flash attention ${setup.flashAttention}, context ${setup.contextSize}, batch ${setup.batchSize}`);
  console.log('decode: tok/s of tokens 2..33 of a greedy generation after a 32-token prompt (sampling included), median of runs ' +
    'alternating with ours in the same process; prefill: one 128-token prompt. ours/peer > 1: ours faster.');
  const head = ['id', 'model', 'check', 'peer decode', 'ours decode', 'ours/peer', 'peer prefill', 'ours prefill', 'ours/peer', 'bench row', 'row/peer'];
  const body = rows.map((r) => {
    const c = r.check;
    const check = `${c.ok ? '' : 'MISMATCH '}${c.tokensEqual ? 'tokens =' : 'tokens DIFFER'}, p ${c.probsMaxRelDiff?.toExponential(0) ?? '?'}`;
    const pd = r.rates.peerDecode.median, od = r.rates.oursDecode.median, pp = r.rates.peerPrefill.median, op = r.rates.oursPrefill.median;
    return [r.id, r.label, check, f(pd), f(od), ratio(od, pd), f(pp), f(op), ratio(op, pp), f(r.benchNativeTokS), ratio(r.benchNativeTokS, pd)];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  for (const line of [head, ...body]) console.log(`  ${line.map((x, i) => (i < 3 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join('  ')}`);
  console.log('  check: 8 greedy tokens after the prompt equal to ours (tokens =), p: largest next-token probability difference ' +
    'relative to the top probability; bench row: the bench\'s native tok/s for the workload (one step at context 32, logits only)');
  for (const r of rows) {
    const runs = r.rates.peerDecode.runs;
    if (Math.max(...runs) > 2 * Math.min(...runs)) {
      console.log(`  ${r.id}: node-llama-cpp's decode runs varied ${(Math.max(...runs) / Math.min(...runs)).toFixed(0)}x (${runs.join(', ')} tok/s; ` +
        `ours ${r.rates.oursDecode.runs.join(', ')}; load average ${r.loadAverage.before} -> ${r.loadAverage.after}): ggml's threads spin ` +
        'at barriers, so a core busy with other work stalls them; the median is what a busy machine gets');
    }
    if (!r.check.tokensEqual) {
      console.log(`  ${r.id}: greedy tokens differ: ours ${r.check.oursTokens.join(' ')}, node-llama-cpp ${r.check.peerTokens.join(' ')} ` +
        `(top-5 overlap ${r.check.top5Overlap}/5)`);
    }
  }
}
