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
import { randomWeights, type LayerSpec } from './helpers/layers';
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

/** Runs `op` on JS and native; both must agree on every special value and be close elsewhere. */
function expectBackendsAgree(op: () => Float32Array, label: string): Float32Array {
  api.useBackend('js');
  const js = op();
  api.useBackend('native');
  const native = op();
  expect(classes(native), `${label}: NaN/Inf positions`).toBe(classes(js));
  const finite = (d: Float32Array) => d.map((x) => (Number.isFinite(x) ? x : 0));
  expectClose(finite(native), finite(js), 1e-5, 1e-4, label);
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
        const got = expectBackendsAgree(() => api.matmul({ data: a, dims: [m, k] }, { data: b, dims: [k, n] }).data, `${m}x${k}x${n}`);
        expect(classes(got)).toBe(classes(matmulRef(a, b, m, k, n)));
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
      expectBackendsAgree(() => api.attention(q, k, v, { isCausal: c.causal, attnMask: mask }).y.data, JSON.stringify(c));
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

  it('huge logits (scale 1e30) stay finite: softmax subtracts the row max', () => {
    expect(classes(api.attention(q, k, v, { scale: 1e30 }).y.data)).toBe('f'.repeat(16));
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

describe.skipIf(!nativeAvailable)('decoding through a KVCache: native == JS', () => {
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
      expect(native.length).toBe(js.length);
      js.forEach((entry, i) => {
        if (typeof entry === 'number') expect(native[i]).toBe(entry);
        else expectClose(native[i] as Float32Array, entry, 1e-5, 1e-4, `entry ${i} of ${JSON.stringify(s)}`);
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
