// Cross-backend properties with fast-check (per-op reference properties live in matmul.test.ts
// and attention.test.ts):
//   - NaN and Inf propagate the same way on both backends (same NaN / +-Inf positions, finite
//     values close), and where the result is defined it is what IEEE arithmetic gives;
//   - decoding through a KVCache in random chunks, with random truncations, gives the same
//     outputs and cache contents on both backends;
//   - a random invalid call fails identically on both backends (class, code and message), so the
//     native path can never accept what the JS path rejects;
//   - an output buffer's previous contents never leak into the result.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { api, forEachBackend, nativeAvailable } from './helpers/backends';
import { FUZZ_RUNS, hostileValue } from './helpers/hostile';
import { attentionRef } from './helpers/attention-ref';
import { layerRef, randomWeights, type LayerSpec } from './helpers/layers';
import { expectClose, matmulRef, randomArray } from './helpers/oracle';

const tensor = (dims: number[], seed: number) => ({ data: randomArray(dims.reduce((p, d) => p * d, 1), seed), dims });
const special = fc.constantFrom(NaN, Infinity, -Infinity);

/** 'N', '+', '-' for NaN and infinities, 'f' for finite: the part of a result IEEE fixes exactly. */
function classes(data: ArrayLike<number>): string {
  let out = '';
  for (let i = 0; i < data.length; i++) {
    const x = data[i];
    out += Number.isNaN(x) ? 'N' : x === Infinity ? '+' : x === -Infinity ? '-' : 'f';
  }
  return out;
}

// Finite values of the NaN/Inf properties against the float64 reference, worst over six runs on
// each kernel set (avx512, avx2, scalar; NODE_ATTENTION_ERROR_LOG, helpers/oracle.ts): 4.4e-7
// absolute where |expected| < 1, 4.3e-7 relative above (native matmul); JS 1.7e-7. Bounds ~4.5x.
const SPECIAL_ATOL = 2e-6, SPECIAL_RTOL = 2e-6;

/**
 * Runs `op` on JS and native; both must put every special value where the float64 `reference`
 * does and be close to it elsewhere (the two backends share the validated plan, so only the
 * reference can see a validation bug), and agree with each other.
 */
function expectBackendsAgree(op: () => Float32Array, reference: ArrayLike<number>, label: string): Float32Array {
  api.useBackend('js');
  const js = op();
  api.useBackend('native');
  const native = op();
  expect(classes(js), `${label}: JS NaN/Inf positions vs float64`).toBe(classes(reference));
  expect(classes(native), `${label}: native NaN/Inf positions vs float64`).toBe(classes(reference));
  const finite = (d: ArrayLike<number>) => Float64Array.from(d, (x) => (Number.isFinite(x) ? x : 0));
  expectClose(finite(js), finite(reference), SPECIAL_ATOL, SPECIAL_RTOL, `${label} JS vs float64`);
  expectClose(finite(native), finite(reference), SPECIAL_ATOL, SPECIAL_RTOL, `${label} native vs float64`);
  return js;
}

function withSpecials(data: Float32Array, hits: [number, number][]): Float32Array {
  const out = Float32Array.from(data);
  for (const [position, value] of hits) out[position % out.length] = value;
  return out;
}

describe.skipIf(!nativeAvailable)('NaN and Inf propagate identically on both backends', () => {
  const hits = fc.array(fc.tuple(fc.nat(), special), { minLength: 1, maxLength: 4 });

  it('matmul: same NaN/Inf positions as the float64 reference and as each other', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 20 }),
      hits, hits, fc.nat(), (m, k, n, hitsA, hitsB, seed) => {
        const a = withSpecials(randomArray(m * k, seed), hitsA), b = withSpecials(randomArray(k * n, seed + 1), hitsB);
        expectBackendsAgree(() => api.matmul({ data: a, dims: [m, k] }, { data: b, dims: [k, n] }).data, matmulRef(a, b, m, k, n), `${m}x${k}x${n}`);
      }), { numRuns: FUZZ_RUNS });
  });

  it('attention: NaN/Inf in q, k, v or a float mask land in the same places on both backends', () => {
    const call = fc.record({
      B: fc.integer({ min: 1, max: 2 }), Hkv: fc.integer({ min: 1, max: 2 }), group: fc.integer({ min: 1, max: 3 }),
      Sq: fc.integer({ min: 1, max: 12 }), Skv: fc.integer({ min: 1, max: 40 }), D: fc.integer({ min: 1, max: 24 }),
      causal: fc.boolean(), mask: fc.boolean(), which: fc.constantFrom('q', 'k', 'v', 'mask'), hits, seed: fc.nat(),
    });
    fc.assert(fc.property(call, (c) => {
      // A non-finite value for a key a row cannot see reaches that row only through 0 * v, which
      // one backend computes and the other skips: the result there is unspecified (see below).
      if (c.which === 'v') c.causal = c.mask = false;
      const Hq = c.Hkv * c.group;
      const q = tensor([c.B, Hq, c.Sq, c.D], c.seed), k = tensor([c.B, c.Hkv, c.Skv, c.D], c.seed + 1), v = tensor([c.B, c.Hkv, c.Skv, c.D], c.seed + 2);
      const mask = c.mask || c.which === 'mask' ? tensor([c.Sq, c.Skv], c.seed + 3) : undefined;
      const target = c.which === 'mask' ? mask! : { q, k, v }[c.which];
      target.data = withSpecials(target.data, c.hits);
      const reference = attentionRef(q, k, v, { isCausal: c.causal, attnMask: mask, hideMasked: true }).y;
      expectBackendsAgree(() => api.attention(q, k, v, { isCausal: c.causal, attnMask: mask }).y.data, reference, JSON.stringify(c));
    }), { numRuns: FUZZ_RUNS });
  });
});

forEachBackend('where NaN/Inf results are defined', () => {
  const q = tensor([1, 1, 4, 4], 1), k = tensor([1, 1, 4, 4], 2), v = tensor([1, 1, 4, 4], 3);
  const poisonKey = (key: number, value: number) => ({ data: withSpecials(k.data, [[key * 4, value]]), dims: k.dims });
  const rows = (y: Float32Array) => [0, 1, 2, 3].map((i) => classes(y.subarray(i * 4, i * 4 + 4)));

  it('a query row whose every key is masked (-inf / false) gives exact zeros', () => {
    const minusInf = new Float32Array(16).fill(0, 4).fill(-Infinity, 0, 4);
    const y = api.attention(q, k, v, { attnMask: { data: minusInf, dims: [4, 4] } }).y.data;
    expect(Array.from(y.subarray(0, 4))).toEqual([0, 0, 0, 0]);
    const none = api.attention(q, k, v, { attnMask: { data: new Uint8Array(16), dims: [4, 4] } }).y.data;
    expect(Array.from(none)).toEqual(new Array(16).fill(0));
    const empty = api.attention(q, k, v, { nonpadKvSeqlen: Int32Array.of(0) }).y.data;
    expect(Array.from(empty)).toEqual(new Array(16).fill(0));
  });

  it('NaN in one query row poisons that row only', () => {
    const y = api.attention({ data: withSpecials(q.data, [[4, NaN]]), dims: q.dims }, k, v).y.data;
    expect(rows(y)).toEqual(['ffff', 'NNNN', 'ffff', 'ffff']);
  });

  it('a NaN or Inf key that a row cannot see (causal, boolean mask, nonpadKvSeqlen) does not reach that row', () => {
    for (const value of [NaN, Infinity, -Infinity]) {
      const bad = poisonKey(2, value);
      expect(rows(api.attention(q, bad, v, { isCausal: true }).y.data).slice(0, 2)).toEqual(['ffff', 'ffff']);
      const hide = { data: Uint8Array.from([1, 1, 0, 1]), dims: [4] };
      expect(rows(api.attention(q, bad, v, { attnMask: hide }).y.data)).toEqual(['ffff', 'ffff', 'ffff', 'ffff']);
      expect(rows(api.attention(q, bad, v, { nonpadKvSeqlen: Int32Array.of(2) }).y.data)).toEqual(['ffff', 'ffff', 'ffff', 'ffff']);
    }
  });

  it('a NaN key a row can see poisons it, and a float mask does not hide one (NaN + -inf is NaN)', () => {
    expect(rows(api.attention(q, poisonKey(2, NaN), v).y.data)).toEqual(['NNNN', 'NNNN', 'NNNN', 'NNNN']);
    const minusInf = { data: Float32Array.from([0, 0, -Infinity, 0]), dims: [4] };
    expect(rows(api.attention(q, poisonKey(2, NaN), v, { attnMask: minusInf }).y.data)).toEqual(['NNNN', 'NNNN', 'NNNN', 'NNNN']);
  });

  it('an infinite key poisons a row only where its score is +Inf or NaN; a -Inf score gives that key weight 0', () => {
    // Row i's score for key 2 is scale * q_i[0] * k_2[0] + finite: the sign of q_i[0], of the Inf
    // and of the scale decide it. Rows 0 and 2 have q_i[0] = 0.5, rows 1 and 3 have -0.5.
    const signed = { data: Float32Array.from(q.data), dims: q.dims };
    [0.5, -0.5, 0.5, -0.5].forEach((x, i) => { signed.data[i * 4] = x; });
    const hideKey2 = { data: Uint8Array.from([1, 1, 0, 1]), dims: [4] };
    for (const scale of [0.5, -0.5]) {
      const hidden = api.attention(signed, k, v, { scale, attnMask: hideKey2 }).y.data;
      for (const value of [Infinity, -Infinity]) {
        const y = api.attention(signed, poisonKey(2, value), v, { scale }).y.data;
        for (let i = 0; i < 4; i++) {
          const score = scale * signed.data[i * 4] * value, row = Array.from(y.subarray(i * 4, i * 4 + 4));
          const label = `scale ${scale}, k = ${value}, row ${i} (score ${score})`;
          // +Inf: exp(Inf - Inf) is NaN; -Inf: exp(-Inf) is 0, exactly as if the key were masked.
          if (score === Infinity) expect(classes(row), label).toBe('NNNN');
          else expect(row, label).toEqual(Array.from(hidden.subarray(i * 4, i * 4 + 4)));
        }
      }
    }
    // 0 * Inf is NaN: a zero in q where the key is infinite poisons the row, whatever the signs.
    const zero = { data: Float32Array.from(signed.data), dims: q.dims };
    zero.data[4] = 0;
    expect(rows(api.attention(zero, poisonKey(2, -Infinity), v).y.data)).toEqual(['ffff', 'NNNN', 'ffff', 'NNNN']);
    // softcap maps a +-Inf score to +-softcap: no row is poisoned, and the key keeps a finite weight.
    expect(rows(api.attention(signed, poisonKey(2, Infinity), v, { softcap: 2 }).y.data)).toEqual(['ffff', 'ffff', 'ffff', 'ffff']);
  });

  it('huge logits (scale 1e30): each row is exactly v at its argmax key (softmax subtracts the row max)', () => {
    const y = api.attention(q, k, v, { scale: 1e30 }).y.data;
    for (let i = 0; i < 4; i++) {
      const scores = [0, 1, 2, 3].map((j) => [0, 1, 2, 3].reduce((sum, d) => sum + q.data[i * 4 + d] * k.data[j * 4 + d], 0));
      const order = [0, 1, 2, 3].sort((a, b) => scores[b] - scores[a]);
      // A clear winner: float32 rounding of the dot products cannot reorder the top two.
      expect(scores[order[0]] - scores[order[1]], `row ${i} top-two gap`).toBeGreaterThan(1e-3);
      expect(Array.from(y.subarray(i * 4, i * 4 + 4)), `row ${i}`).toEqual(Array.from(v.data.subarray(order[0] * 4, order[0] * 4 + 4)));
    }
  });

  it("matmul ignores the previous contents of opts.out (NaN there never leaks into the result)", () => {
    for (const [m, k2, n] of [[1, 1, 1], [5, 7, 3], [37, 19, 45], [64, 64, 64]]) {
      const a = tensor([m, k2], m), b = tensor([k2, n], n), bias = tensor([n], k2);
      const out = new Float32Array(m * n).fill(NaN);
      expect(classes(api.matmul(a, b, { out, bias }).data)).toBe('f'.repeat(m * n));
    }
  });
});

// ---------------------------------------------------------------------------------------------

// Decoding outputs against each other and the float64 layer, worst over six runs on each kernel
// set (NODE_ATTENTION_ERROR_LOG, helpers/oracle.ts): native vs JS 7.5e-7 absolute / 7.6e-7
// relative, native vs float64 7.0e-7 / 7.1e-7, JS vs float64 1.7e-7. Bounds ~4x.
const DECODE_ATOL = 3e-6, DECODE_RTOL = 3e-6;

describe.skipIf(!nativeAvailable)('decoding through a KVCache: native == JS == float64 reference', () => {
  const spec = fc.record({
    dIn: fc.integer({ min: 1, max: 24 }), numKVHeads: fc.integer({ min: 1, max: 3 }), group: fc.integer({ min: 1, max: 3 }),
    headDim: fc.integer({ min: 1, max: 12 }), dOut: fc.integer({ min: 0, max: 20 }), biases: fc.boolean(), causal: fc.boolean(),
    B: fc.integer({ min: 1, max: 2 }), maxSeqLen: fc.integer({ min: 4, max: 40 }),
    steps: fc.array(fc.oneof(
      fc.record({ append: fc.integer({ min: 1, max: 9 }), async: fc.boolean() }),
      fc.record({ truncateBy: fc.integer({ min: 0, max: 6 }) }),
    ), { minLength: 1, maxLength: 8 }),
    seed: fc.nat(),
  });

  it('random chunk sizes, truncations and async steps give the same outputs and cache contents', async () => {
    await fc.assert(fc.asyncProperty(spec, async (s) => {
      const layerSpec: LayerSpec = { dIn: s.dIn, numHeads: s.numKVHeads * s.group, numKVHeads: s.numKVHeads, headDim: s.headDim, dOut: s.dOut, biases: s.biases };
      const weights = randomWeights(layerSpec, s.seed % 1000);
      const runOn = async (backend: 'js' | 'native') => {
        api.useBackend(backend);
        const layer = new api.MultiHeadAttention({ numHeads: layerSpec.numHeads, numKVHeads: s.numKVHeads, causal: s.causal }, weights);
        const cache = new api.KVCache({ batch: s.B, numKVHeads: s.numKVHeads, headDim: s.headDim, maxSeqLen: s.maxSeqLen });
        const log: (Float32Array | number)[] = [];
        let seed = s.seed;
        for (const step of s.steps) {
          if ('truncateBy' in step) {
            cache.truncate(Math.max(0, cache.length - step.truncateBy));
          } else {
            const S = Math.min(step.append, s.maxSeqLen - cache.length);
            if (S === 0) continue;
            const x = tensor([s.B, S, s.dIn], ++seed);
            log.push((step.async ? await layer.forwardAsync(x, { cache }) : layer.forward(x, { cache })).data);
          }
          log.push(cache.length);
        }
        log.push(cache.snapshot().key.data, cache.snapshot().value.data);
        cache.dispose();
        return log;
      };
      const js = await runOn('js'), native = await runOn('native');
      // The float64 reference of the same steps: the cache holds the rows of x appended at the
      // positions still kept; an append attends over them and its own rows (causal or not).
      const reference: (Float64Array | number)[] = [];
      const history: Float32Array[] = Array.from({ length: s.B }, () => new Float32Array(0));
      let seed = s.seed;
      for (const step of s.steps) {
        const length = history[0].length / s.dIn;
        if ('truncateBy' in step) {
          const keep = Math.max(0, length - step.truncateBy);
          history.forEach((h, b) => { history[b] = h.slice(0, keep * s.dIn); });
        } else {
          const S = Math.min(step.append, s.maxSeqLen - length);
          if (S === 0) continue;
          const x = tensor([s.B, S, s.dIn], ++seed).data;
          history.forEach((h, b) => { history[b] = Float32Array.of(...h, ...x.subarray(b * S * s.dIn, (b + 1) * S * s.dIn)); });
          const T = length + S, sequence = Float32Array.of(...history.flatMap((h) => Array.from(h)));
          const y = layerRef(layerSpec, weights, sequence, s.B, T, { causal: s.causal });
          const width = layerSpec.dOut || layerSpec.numHeads * s.headDim;
          reference.push(Float64Array.from({ length: s.B * S * width }, (_, e) => {
            const b = Math.floor(e / (S * width)), rest = e % (S * width);
            return y[(b * T + length) * width + rest];
          }));
        }
        reference.push(history[0].length / s.dIn);
      }
      // The cache's keys and values: x Wk + bk and x Wv + bv of the kept rows, as (B, Hkv, length, D).
      const L = history[0].length / s.dIn, kvWidth = s.numKVHeads * s.headDim;
      for (const [w, bias] of [[weights.wk, weights.bk], [weights.wv, weights.bv]] as const) {
        const out = new Float64Array(s.B * kvWidth * L);
        history.forEach((h, b) => {
          const projected = matmulRef(h, w.data, L, s.dIn, kvWidth);
          for (let t = 0; t < L; t++) for (let c = 0; c < kvWidth; c++) {
            const head = Math.floor(c / s.headDim), d = c % s.headDim;
            out[((b * s.numKVHeads + head) * L + t) * s.headDim + d] = projected[t * kvWidth + c] + (bias ? bias[c] : 0);
          }
        });
        reference.push(out);
      }
      expect(native.length).toBe(js.length);
      expect(js.length).toBe(reference.length);
      js.forEach((entry, i) => {
        const label = `entry ${i} of ${JSON.stringify(s)}`;
        if (typeof entry === 'number') {
          expect(native[i], label).toBe(entry);
          expect(entry, label).toBe(reference[i]);
        } else {
          expectClose(native[i] as Float32Array, entry, DECODE_ATOL, DECODE_RTOL, `${label}: native vs JS`);
          expectClose(entry, reference[i] as Float64Array, DECODE_ATOL, DECODE_RTOL, `${label}: JS vs float64`);
          expectClose(native[i] as Float32Array, reference[i] as Float64Array, DECODE_ATOL, DECODE_RTOL, `${label}: native vs float64`);
        }
      });
    }), { numRuns: Math.min(FUZZ_RUNS, 100) });
  });
});

// ---------------------------------------------------------------------------------------------

describe.skipIf(!nativeAvailable)('invalid calls fail identically on both backends', () => {
  function outcome(call: () => unknown): string {
    try {
      call();
      return 'ok';
    } catch (err) {
      const e = err as Error & { code?: string };
      return `${e.constructor.name} ${e.code ?? ''} ${e.message}`;
    }
  }

  function both(call: () => unknown): [string, string] {
    api.useBackend('js');
    const js = outcome(call);
    api.useBackend('native');
    return [js, outcome(call)];
  }

  const slots = fc.nat(5);
  const cases: [string, (bad: unknown, slot: number) => () => unknown][] = [
    ['matmul', (bad, slot) => {
      const args: unknown[] = [tensor([3, 4], 1), tensor([4, 5], 2), { bias: tensor([5], 3) }];
      if (slot < 2) args[slot] = bad;
      else if (slot === 2) args[0] = { data: (args[0] as { data: unknown }).data, dims: bad };
      else (args[2] as Record<string, unknown>)[['bias', 'transA', 'out'][slot - 3]] = bad;
      return () => api.matmul(...(args as Parameters<typeof api.matmul>));
    }],
    ['linear', (bad, slot) => {
      const args: unknown[] = [tensor([2, 3, 4], 1), tensor([4, 5], 2), tensor([5], 3)];
      args[slot % 3] = bad;
      return () => api.linear(...(args as Parameters<typeof api.linear>));
    }],
    ['attention', (bad, slot) => {
      const args: unknown[] = [tensor([1, 2, 3, 4], 1), tensor([1, 1, 5, 4], 2), tensor([1, 1, 5, 4], 3), { isCausal: true }];
      if (slot < 3) args[slot] = bad;
      else (args[3] as Record<string, unknown>)[['attnMask', 'scale', 'nonpadKvSeqlen'][slot - 3]] = bad;
      return () => api.attention(...(args as Parameters<typeof api.attention>));
    }],
    ['KVCache', (bad, slot) => {
      const config: Record<string, unknown> = { batch: 1, numKVHeads: 2, headDim: 4, maxSeqLen: 8 };
      config[['batch', 'numKVHeads', 'headDim', 'maxSeqLen', 'extra', 'batch'][slot]] = bad;
      return () => new api.KVCache((slot === 5 ? bad : config) as never);
    }],
    ['MultiHeadAttention', (bad, slot) => {
      const weights: Record<string, unknown> = { wq: tensor([6, 8], 1), wk: tensor([6, 4], 2), wv: tensor([6, 4], 3) };
      const config: Record<string, unknown> = { numHeads: 2, numKVHeads: 1 };
      if (slot < 3) weights[['wq', 'wk', 'wv'][slot]] = bad;
      else config[['numHeads', 'numKVHeads', 'scale'][slot - 3]] = bad;
      return () => new api.MultiHeadAttention(config as never, weights as never).forward(tensor([1, 2, 6], 4));
    }],
    ['MultiHeadAttention.forward', (bad, slot) => {
      const layer = new api.MultiHeadAttention({ numHeads: 2 }, { wq: tensor([6, 8], 1), wk: tensor([6, 8], 2), wv: tensor([6, 8], 3) });
      const args: unknown[] = [tensor([1, 2, 6], 4), {}];
      if (slot < 2) args[slot] = bad;
      else (args[1] as Record<string, unknown>)[['cache', 'attnMask', 'other', 'cache'][slot - 2]] = bad;
      return () => layer.forward(...(args as Parameters<typeof layer.forward>));
    }],
  ];

  it.each(cases)('%s', (_name, make) => {
    fc.assert(fc.property(hostileValue(), slots, (bad, slot) => {
      const [js, native] = both(make(bad, slot));
      expect(native).toBe(js);
      if (js !== 'ok') expect(js).toMatch(/^(TypeError|RangeError) ERR_ATTN_[A-Z_]+ Expected .+ for .+ but received/s);
    }), { numRuns: FUZZ_RUNS });
  });
});
