// CPU smoke test: a plain node script (no vitest, no child processes) so it can run under
// `qemu-x86_64 -cpu <model>`, which emulates one CPU model and raises SIGILL on any instruction
// that model lacks, but does not follow child processes. scripts/test-cpus.mjs runs it on the
// host and on emulated CPUs.
//
//   node test/cpus/smoke.cjs --expect=scalar|avx2|avx512|best
//
// Checks that the native addon loads, that backendInfo().simd names the expected kernel set
// ('best': the best set /proc/cpuinfo allows), and that every op, on every kernel set this CPU
// can run, matches the JS backend.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const api = require(path.join(__dirname, '..', '..', 'dist', 'index.js'));

const expectArg = process.argv.find((a) => a.startsWith('--expect='));
const expected = expectArg ? expectArg.slice('--expect='.length) : 'best';
const failures = [];

function check(condition, message) {
  if (!condition) failures.push(message);
}

function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function tensor(dims, seed) {
  const next = rng(seed);
  const data = new Float32Array(dims.reduce((p, d) => p * d, 1));
  for (let i = 0; i < data.length; i++) data[i] = next() * 2 - 1;
  return { data, dims };
}

function maxError(actual, expectedData) {
  let worst = 0;
  for (let i = 0; i < expectedData.length; i++) {
    const e = expectedData[i], a = actual[i];
    const err = Math.abs(a - e) / (1 + Math.abs(e));
    if (!(err <= worst)) worst = Number.isNaN(err) ? Infinity : err;
  }
  return worst;
}

/** Runs `op` on both backends and compares every output tensor (relative error <= 1e-4). */
async function same(label, op) {
  api.useBackend('js');
  const want = await op();
  api.useBackend('native');
  const got = await op();
  const outputs = Array.isArray(want) ? want.map((w, i) => [w, got[i]]) : [[want, got]];
  for (const [w, g] of outputs) {
    if (typeof w === 'number') {
      check(Math.abs(w - g) <= 1e-4 * (1 + Math.abs(w)), `${label}: ${g} != ${w}`);
      continue;
    }
    check(JSON.stringify(w.dims) === JSON.stringify(g.dims), `${label}: dims ${g.dims} != ${w.dims}`);
    const err = maxError(g.data, w.data);
    check(err <= 1e-4, `${label}: max relative error ${err}`);
  }
}

async function smokeOps(isa) {
  const a1 = tensor([67], 1), b1 = tensor([67], 2);
  await same(`${isa} dot`, () => api.dot(a1.data, b1.data));
  const a = tensor([37, 45], 3), b = tensor([45, 33], 4);
  await same(`${isa} matmul 37x45 @ 45x33`, () => api.matmul(a, b));
  const bias = tensor([33], 5);
  await same(`${isa} matmul transB + bias`, () => api.matmul(a, { data: tensor([33, 45], 6).data, dims: [33, 45] }, { transB: true, bias }));
  await same(`${isa} matmul broadcast batch`, () => api.matmul(tensor([2, 1, 5, 7], 7), tensor([3, 7, 4], 8)));
  await same(`${isa} linear`, () => api.linear(tensor([2, 3, 45], 9), b, bias));

  const q = tensor([2, 4, 17, 24], 10), k = tensor([2, 2, 17, 24], 11), v = tensor([2, 2, 17, 24], 12);
  await same(`${isa} attention GQA causal`, () => api.attention(q, k, v, { isCausal: true }).y);
  const mask = { data: tensor([17, 17], 13).data, dims: [17, 17] };
  await same(`${isa} attention float mask`, () => api.attention(q, k, v, { attnMask: mask }).y);
  const kLong = tensor([1, 2, 70, 24], 14), vLong = tensor([1, 2, 70, 24], 15);
  await same(`${isa} attention decode Sq=1`, () => api.attention(tensor([1, 4, 1, 24], 16), kLong, vLong).y);
  await same(`${isa} attention 3-D`, () =>
    api.attention(tensor([1, 9, 4 * 8], 17), tensor([1, 9, 2 * 8], 18), tensor([1, 9, 2 * 8], 19), { qNumHeads: 4, kvNumHeads: 2 }).y);
  await same(`${isa} attentionAsync`, async () => (await api.attentionAsync(q, k, v, { isCausal: true })).y);
  const boolMask = { data: Uint8Array.from({ length: 17 * 17 }, (_, i) => i % 3), dims: [17, 17] };
  await same(`${isa} attention bool mask, nonpad, softcap`, () =>
    api.attention(q, k, v, { attnMask: boolMask, nonpadKvSeqlen: Int32Array.of(17, 9), softcap: 5 }).y);
  await same(`${isa} attention qkMatmulOutput`, () => {
    const r = api.attention(q, k, v, { qkMatmulOutputMode: 3, isCausal: true });
    return [r.y, r.qkMatmulOutput];
  });
  await same(`${isa} attention with past`, () => {
    const r = api.attention(tensor([2, 4, 3, 24], 20), tensor([2, 2, 3, 24], 21), tensor([2, 2, 3, 24], 22),
      { pastKey: tensor([2, 2, 9, 24], 23), pastValue: tensor([2, 2, 9, 24], 24), isCausal: true });
    return [r.y, r.presentKey, r.presentValue];
  });

  const weights = { wq: tensor([32, 32], 30), wk: tensor([32, 16], 31), wv: tensor([32, 16], 32), wo: tensor([32, 32], 33) };
  await same(`${isa} MultiHeadAttention prefill + decode through a KVCache`, async () => {
    const layer = new api.MultiHeadAttention({ numHeads: 4, numKVHeads: 2 }, weights);
    const cache = new api.KVCache({ batch: 1, numKVHeads: 2, headDim: 8, maxSeqLen: 40 });
    const out = [layer.forward(tensor([1, 30, 32], 34), { cache })];
    for (let step = 0; step < 3; step++) out.push(await layer.forwardAsync(tensor([1, 1, 32], 35 + step), { cache }));
    const snapshot = cache.snapshot();
    cache.dispose();
    return [...out, snapshot.key, snapshot.value];
  });
  await same(`${isa} GPT forward`, () =>
    api.GPT.random({ vocab_size: 50, n_positions: 16, n_embd: 32, n_layer: 2, n_head: 4 }, 1).forward(Int32Array.of(1, 5, 9, 3, 7)));
}

/** The best kernel set /proc/cpuinfo allows, among those the addon was built with. */
function bestFromCpuinfo(built) {
  let flags = '';
  try {
    flags = fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '';
  } catch {
    return built[0];
  }
  const has = (f) => new RegExp(`\\b${f}\\b`).test(flags);
  const allowed = ['scalar'];
  if (has('avx2') && has('fma')) allowed.unshift('avx2');
  if (has('avx512f') && has('avx512bw') && has('avx512vl') && has('avx512dq')) allowed.unshift('avx512');
  return allowed.find((isa) => built.includes(isa)) ?? 'scalar';
}

async function main() {
  const info = api.backendInfo();
  if (!info.nativeLoaded) {
    console.error(`cpu-smoke: native addon did not load:\n${info.nativeError}`);
    process.exit(1);
  }
  const want = expected === 'best' ? bestFromCpuinfo(info.simdSupported) : expected;
  check(info.simd === want, `backendInfo().simd is '${info.simd}', expected '${want}'`);
  check(info.simdSupported[0] === info.simd, `simdSupported ${info.simdSupported} does not start with ${info.simd}`);
  for (const isa of ['avx512', 'avx2']) {
    if (!info.simdSupported.includes(isa)) check(api.setSimd(isa) === false, `setSimd('${isa}') accepted on a CPU without it`);
  }
  for (const isa of info.simdSupported) {
    check(api.setSimd(isa) === true, `setSimd('${isa}') refused`);
    await smokeOps(isa);
  }
  api.setSimd(info.simd);
  const summary = `simd=${info.simd} supported=[${info.simdSupported.join(', ')}] threads=${info.threads}`;
  if (failures.length) {
    console.error(`cpu-smoke FAILED (${summary}):\n  ${failures.join('\n  ')}`);
    process.exit(1);
  }
  console.log(`cpu-smoke ok: ${summary}`);
}

main().catch((err) => {
  console.error(`cpu-smoke FAILED: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
