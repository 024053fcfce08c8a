// Generation options: the sampling distribution (repetition penalty, temperature, top-k, top-p,
// min-p) against a float64 reference written from Hugging Face's logits processors, seeded draws
// against it, and GPT.generate's eosTokenId, onToken, option checks and model_type refusal on both
// backends.
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyRepetitionPenalty, sample, tokenWeights } from '../dist/gpt/sampling.js';
import { seededRandom } from '../dist/random.js';
import { api, forEachBackend } from './helpers/backends';

const CONFIG = { vocab_size: 50, n_positions: 32, n_embd: 32, n_layer: 2, n_head: 4, layer_norm_epsilon: 1e-5 };
const V = CONFIG.vocab_size;

interface Params { temperature: number; topK: number; topP: number; minP: number; penalty: number; seen: number[] }

// ---------------------------------------------------------------------------------------------
// float64 reference, step by step as transformers' RepetitionPenalty, Temperature, TopK, TopP and
// MinP processors compute it (masking with -inf), sharing no code with lib/gpt/sampling.ts.

function softmax(scores: number[]): number[] {
  const max = Math.max(...scores);
  const e = scores.map((s) => (s === -Infinity ? 0 : Math.exp(s - max)));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
}

function referenceProbs(logits: ArrayLike<number>, p: Params): number[] {
  let s = Array.from(logits);
  for (const t of new Set(p.seen)) s[t] = s[t] < 0 ? s[t] * p.penalty : s[t] / p.penalty;
  s = s.map((v) => v / p.temperature);
  // Rank: larger score first, the lower id first among equals.
  const desc = s.map((_, i) => i).sort((a, b) => s[b] - s[a] || a - b);
  for (const i of desc.slice(p.topK)) s[i] = -Infinity;
  if (p.topP < 1) {
    const probs = softmax(s);
    const asc = [...desc].reverse();
    let cumulative = 0;
    asc.forEach((i, r) => {
      cumulative += probs[i];
      if (cumulative <= 1 - p.topP && r < asc.length - 1) s[i] = -Infinity;
    });
  }
  if (p.minP > 0) {
    const probs = softmax(s), top = Math.max(...probs);
    probs.forEach((q, i) => { if (q < p.minP * top) s[i] = -Infinity; });
  }
  return softmax(s);
}

/** The library's distribution as one probability per token. */
function libraryProbs(logits: Float32Array, p: Params): number[] {
  let row: Float32Array | Float64Array = logits;
  if (p.penalty !== 1) {
    row = Float64Array.from(logits);
    applyRepetitionPenalty(row, [...new Set(p.seen)], p.penalty);
  }
  const { tokens, weights } = tokenWeights(row, 0, row.length, p)!;
  const total = weights.reduce((a: number, b: number) => a + b, 0);
  const probs = new Array<number>(row.length).fill(0);
  tokens.forEach((t: number, c: number) => { probs[t] = weights[c] / total; });
  return probs;
}

function randomParams(next: () => number, n: number): Params {
  const pick = <T>(values: T[]): T => values[Math.floor(next() * values.length)];
  return {
    temperature: pick([0.3, 0.7, 1, 1.8]),
    topK: pick([1, 3, n, n + 5, Math.max(1, Math.floor(next() * n))]),
    topP: pick([1, 0.05 + 0.9 * next(), 0.3 + 0.7 * next()]),
    minP: pick([0, 0.3 * next(), 0.8 * next()]),
    penalty: pick([1, 0.6 + next(), 1 + 2 * next()]),
    seen: Array.from({ length: Math.floor(next() * 6) }, () => Math.floor(next() * n)),
  };
}

describe('the sampling distribution', () => {
  it('matches the transformers-order reference: same allowed set, probabilities within 1e-12', () => {
    const next = seededRandom(11);
    for (let trial = 0; trial < 2000; trial++) {
      const n = 1 + Math.floor(next() * 30);
      // Every third row on a coarse grid, so ties meet the top-k and top-p cuts.
      const coarse = trial % 3 === 0;
      const logits = Float32Array.from({ length: n }, () => (coarse ? Math.round(next() * 8) / 2 - 2 : next() * 8 - 4));
      const p = randomParams(next, n);
      const want = referenceProbs(logits, p), got = libraryProbs(logits, p);
      for (let i = 0; i < n; i++) {
        expect(got[i] > 0, `trial ${trial} token ${i} allowed (${JSON.stringify(p)})`).toBe(want[i] > 0);
        expect(Math.abs(got[i] - want[i]), `trial ${trial} token ${i}`).toBeLessThan(1e-12);
      }
    }
  });

  it('cuts ties at top-p toward the lower token id, and always keeps the most likely token', () => {
    const flat = new Float32Array(4);
    const base = { temperature: 1, topK: 4, topP: 0.5, minP: 0, penalty: 1, seen: [] };
    expect(libraryProbs(flat, base)).toEqual([0.5, 0.5, 0, 0]);
    // 0.26 of the mass needs a second token: the one that crosses topP is kept.
    expect(libraryProbs(flat, { ...base, topP: 0.26 })).toEqual([0.5, 0.5, 0, 0]);
    expect(libraryProbs(Float32Array.from([0, 9, 0]), { ...base, topP: 1e-9, minP: 0.99 })).toEqual([0, 1, 0]);
  });

  it('applies the repetition penalty as transformers does: positive logits divided, the rest multiplied', () => {
    const row = Float64Array.from([2, -2, 0, 3, -1]);
    applyRepetitionPenalty(row, [0, 1, 2], 2);
    expect(Array.from(row)).toEqual([1, -4, 0, 3, -1]);
  });

  const draws: [string, Params][] = [
    ['top-p', { temperature: 1, topK: 8, topP: 0.6, minP: 0, penalty: 1, seen: [] }],
    ['min-p', { temperature: 0.8, topK: 8, topP: 1, minP: 0.2, penalty: 1, seen: [] }],
    ['top-k then top-p then min-p', { temperature: 1.3, topK: 6, topP: 0.9, minP: 0.1, penalty: 1, seen: [] }],
    ['repetition penalty', { temperature: 1, topK: 8, topP: 1, minP: 0, penalty: 1.8, seen: [0, 2, 7] }],
  ];
  it.each(draws)('%s: seeded draws never leave the allowed set and follow its probabilities', (_name, p) => {
    const logits = Float32Array.from([1.2, 0.3, 1.0, -0.5, 0.9, 0.1, -2, 1.1]);
    const want = referenceProbs(logits, p);
    let row: Float32Array | Float64Array = logits;
    if (p.penalty !== 1) {
      row = Float64Array.from(logits);
      applyRepetitionPenalty(row, p.seen, p.penalty);
    }
    const random = seededRandom(21), counts = new Array<number>(8).fill(0), N = 20000;
    for (let i = 0; i < N; i++) counts[sample(row, 0, 8, p, random)]++;
    // 5 standard deviations of a binomial frequency at N = 20000 is under 0.018.
    for (let i = 0; i < 8; i++) {
      if (want[i] === 0) expect(counts[i], `token ${i} is outside the allowed set`).toBe(0);
      expect(Math.abs(counts[i] / N - want[i]), `token ${i}`).toBeLessThan(0.018);
    }
    // The option changes the distribution.
    expect(want).not.toEqual(referenceProbs(logits, { ...p, topK: 8, topP: 1, minP: 0, penalty: 1 }));
  });
});

// ---------------------------------------------------------------------------------------------

let dir: string;
beforeAll(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'attn-generate-'));
});
afterAll(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});
let folderCount = 0;

forEachBackend('GPT.generate options', () => {
  const model = () => api.GPT.random(CONFIG, 1234);
  // Larger weights than GPT-2's 0.02, so greedy decoding does not repeat one token forever.
  const lively = () => api.GPT.random(CONFIG, 1234, { std: 0.5 });
  const PROMPT = [5, 6, 7];

  /** Logits of the next token after `sequence`, from the full forward pass. */
  const nextLogits = (m: InstanceType<typeof api.GPT>, sequence: number[]): Float32Array =>
    m.forward(Int32Array.from(sequence)).data.slice((sequence.length - 1) * V, sequence.length * V);

  /** The first k with a token not generated before it, so stopping there is observable. */
  const firstNew = (tokens: Int32Array, from: number): number => {
    for (let k = from; k < tokens.length; k++) if (!tokens.subarray(0, k).includes(tokens[k])) return k;
    throw new Error('no new token');
  };

  it('repetitionPenalty: greedy picks the argmax of the penalised forward logits, which differs from plain greedy', () => {
    const m = model();
    const plain = m.generate(PROMPT, { maxNewTokens: 16 });
    const penalised = m.generate(PROMPT, { maxNewTokens: 16, repetitionPenalty: 1.5 });
    expect(penalised).not.toEqual(plain);
    const sequence = [...PROMPT];
    for (const token of penalised) {
      const probs = referenceProbs(nextLogits(m, sequence), { temperature: 1e-9, topK: V, topP: 1, minP: 0, penalty: 1.5, seen: sequence });
      expect(token).toBe(probs.indexOf(Math.max(...probs)));
      sequence.push(token);
    }
    // A penalty of 1 is no penalty.
    expect(m.generate(PROMPT, { maxNewTokens: 16, repetitionPenalty: 1 })).toEqual(plain);
  });

  const restricted: [string, Partial<Params>][] = [
    ['topP', { topP: 0.3 }],
    ['minP', { minP: 0.9 }],
    ['topK + topP + minP + repetitionPenalty', { topK: 20, topP: 0.5, minP: 0.8, penalty: 1.3 }],
  ];
  it.each(restricted)('%s: every sampled token lies in the reference allowed set, and the set is a strict subset', (_name, extra) => {
    const m = model();
    const p: Params = { temperature: 1.5, topK: V, topP: 1, minP: 0, penalty: 1, seen: [], ...extra };
    const opts = { maxNewTokens: 20, temperature: p.temperature, seed: 3, topK: p.topK, topP: p.topP, minP: p.minP, repetitionPenalty: p.penalty };
    const tokens = m.generate(PROMPT, opts);
    expect(tokens).not.toEqual(m.generate(PROMPT, { maxNewTokens: 20, temperature: p.temperature, seed: 3 }));
    const sequence = [...PROMPT];
    for (const token of tokens) {
      const probs = referenceProbs(nextLogits(m, sequence), { ...p, seen: sequence });
      expect(probs[token]).toBeGreaterThan(0);
      expect(probs.filter((q) => q > 0).length).toBeLessThan(V);
      sequence.push(token);
    }
  });

  it('topP 1, minP 0 and repetitionPenalty 1 replay the plain seeded draw; a tiny topP is greedy', () => {
    const m = model();
    const opts = { maxNewTokens: 16, temperature: 1.5, seed: 99 };
    expect(m.generate(PROMPT, { ...opts, topP: 1, minP: 0, repetitionPenalty: 1 })).toEqual(m.generate(PROMPT, opts));
    expect(m.generate(PROMPT, { ...opts, topP: 1e-9 })).toEqual(m.generate(PROMPT, { maxNewTokens: 16 }));
  });

  it('eosTokenId stops right after that token, which is the last one returned', () => {
    const m = lively();
    const greedy = m.generate(PROMPT, { maxNewTokens: 20 });
    const k = firstNew(greedy, 3);
    const stopped = m.generate(PROMPT, { maxNewTokens: 20, eosTokenId: greedy[k] });
    expect(stopped.length).toBe(k + 1);
    expect(stopped).toEqual(greedy.slice(0, k + 1));
    // A list stops at whichever comes first; an id never generated changes nothing.
    const j = firstNew(greedy, k + 1);
    expect(m.generate(PROMPT, { maxNewTokens: 20, eosTokenId: [greedy[j], greedy[k]] }).length).toBe(k + 1);
    const unused = [...Array(V).keys()].find((t) => !greedy.includes(t))!;
    expect(m.generate(PROMPT, { maxNewTokens: 20, eosTokenId: [unused] })).toEqual(greedy);
    expect(m.generate(PROMPT, { maxNewTokens: 20, eosTokenId: null })).toEqual(greedy);
    // Sampling stops the same way.
    const sampled = m.generate(PROMPT, { maxNewTokens: 20, temperature: 1, seed: 4 });
    const ks = firstNew(sampled, 2);
    expect(m.generate(PROMPT, { maxNewTokens: 20, temperature: 1, seed: 4, eosTokenId: sampled[ks] })).toEqual(sampled.slice(0, ks + 1));
  });

  it('reads eos_token_id from config.json, lets generation_config.json override it, and keeps it through save', async () => {
    const m = lively();
    const greedy = m.generate(PROMPT, { maxNewTokens: 20 });
    const k = firstNew(greedy, 3), j = firstNew(greedy, k + 1);
    expect(m.generationConfig.eosTokenId).toEqual([]);
    const folder = path.join(dir, `m${folderCount++}`);
    await m.save(folder);
    const configFile = path.join(folder, 'config.json');
    const config = JSON.parse(await fsp.readFile(configFile, 'utf8'));
    await fsp.writeFile(configFile, JSON.stringify({ ...config, eos_token_id: greedy[j] }));
    const fromConfig = await api.GPT.load(folder);
    expect(fromConfig.generationConfig.eosTokenId).toEqual([greedy[j]]);
    expect(fromConfig.generate(PROMPT, { maxNewTokens: 20 }).length).toBe(j + 1);
    expect(fromConfig.generate(PROMPT, { maxNewTokens: 20, eosTokenId: null })).toEqual(greedy);
    expect(fromConfig.generate(PROMPT, { maxNewTokens: 20, eosTokenId: greedy[k] }).length).toBe(k + 1);

    await fsp.writeFile(path.join(folder, 'generation_config.json'), JSON.stringify({ bos_token_id: 0, eos_token_id: [greedy[k], 49] }));
    const fromGeneration = await api.GPT.load(folder);
    expect(fromGeneration.generationConfig.eosTokenId).toEqual([greedy[k], 49]);
    expect(fromGeneration.generate(PROMPT, { maxNewTokens: 20 }).length).toBe(k + 1);

    const resaved = path.join(dir, `m${folderCount++}`);
    await fromGeneration.save(resaved);
    expect((await api.GPT.load(resaved)).generationConfig.eosTokenId).toEqual([greedy[k], 49]);

    await fsp.writeFile(path.join(folder, 'generation_config.json'), JSON.stringify({ eos_token_id: 50 }));
    await expect(api.GPT.load(folder)).rejects.toThrow(/Expected token ids in \[0, 50\) for .*generation_config\.json\.eos_token_id but received 50/);
  });

  it('onToken sees every token with its index, synchronously, and stops generation by returning false', () => {
    const m = lively();
    const greedy = m.generate(PROMPT, { maxNewTokens: 12 });
    const seen: [number, number][] = [];
    const all = m.generate(PROMPT, { maxNewTokens: 12, onToken: (token, index) => { seen.push([token, index]); } });
    expect(all).toEqual(greedy);
    expect(seen).toEqual(Array.from(greedy, (t, i) => [t, i]));
    const calls: number[] = [];
    const stopped = m.generate(PROMPT, { maxNewTokens: 12, onToken: (_token, index) => { calls.push(index); return index < 4; } });
    expect(stopped).toEqual(greedy.slice(0, 5));
    expect(calls).toEqual([0, 1, 2, 3, 4]);
    // The eos token is reported too.
    const k = firstNew(greedy, 3), eosSeen: number[] = [];
    m.generate(PROMPT, { maxNewTokens: 12, eosTokenId: greedy[k], onToken: (t) => { eosSeen.push(t); } });
    expect(eosSeen).toEqual(Array.from(greedy.slice(0, k + 1)));
    expect(() => m.generate(PROMPT, { maxNewTokens: 12, onToken: () => { throw new Error('from onToken'); } })).toThrow('from onToken');
  });

  it('rejects bad option values: TypeError for the wrong kind, RangeError for the wrong value, naming opts.<name>', () => {
    const m = model();
    const gen = (extra: Record<string, unknown>) => () => m.generate(PROMPT, { maxNewTokens: 4, ...extra } as never);
    const cases: [Record<string, unknown>, typeof TypeError | typeof RangeError, RegExp][] = [
      [{ topP: 0 }, RangeError, /Expected a number in \(0, 1\] for opts\.topP but received 0/],
      [{ topP: 1.5 }, RangeError, /opts\.topP but received 1\.5/],
      [{ topP: NaN }, RangeError, /opts\.topP but received NaN/],
      [{ topP: '0.9' }, TypeError, /Expected a number in \(0, 1\] for opts\.topP but received string "0\.9"/],
      [{ minP: 1 }, RangeError, /Expected a number in \[0, 1\) for opts\.minP but received 1/],
      [{ minP: -0.1 }, RangeError, /opts\.minP/],
      [{ minP: null }, TypeError, /opts\.minP but received null/],
      [{ repetitionPenalty: 0 }, RangeError, /Expected a finite number > 0 for opts\.repetitionPenalty but received 0/],
      [{ repetitionPenalty: Infinity }, RangeError, /opts\.repetitionPenalty/],
      [{ repetitionPenalty: true }, TypeError, /opts\.repetitionPenalty but received boolean true/],
      [{ eosTokenId: 50 }, RangeError, /Expected token ids in \[0, 50\) for opts\.eosTokenId but received 50/],
      [{ eosTokenId: [1, 2.5] }, RangeError, /opts\.eosTokenId but received 2\.5/],
      [{ eosTokenId: '1' }, TypeError, /Expected a token id, an array of token ids or null for opts\.eosTokenId/],
      [{ eosTokenId: Int32Array.of(1) }, TypeError, /opts\.eosTokenId but received Int32Array/],
      [{ onToken: 'log' }, TypeError, /Expected a function for opts\.onToken but received string "log"/],
      [{ temperature: '1' }, TypeError, /opts\.temperature/],
      [{ top_p: 0.9 }, RangeError, /only the options .*topP.* for opts but received unknown option "top_p"/],
    ];
    for (const [extra, kind, message] of cases) {
      expect(gen(extra), JSON.stringify(extra)).toThrow(kind);
      expect(gen(extra), JSON.stringify(extra)).toThrow(message);
    }
  });

  it('refuses a folder of another architecture by name, pointing to loadModel', async () => {
    const folder = path.join(dir, `m${folderCount++}`);
    await model().save(folder);
    const configFile = path.join(folder, 'config.json');
    await fsp.writeFile(configFile, JSON.stringify({ model_type: 'llama', hidden_size: 64, num_hidden_layers: 2, vocab_size: 50 }));
    const load = api.GPT.load(folder);
    await expect(load).rejects.toThrow(RangeError);
    await expect(load).rejects.toThrow(/Expected 'gpt2' \(loadModel\(\) picks the class for any of 'gpt2', 'llama', 'mistral', 'qwen2'\) for .*config\.json\.model_type but received "llama"/);
    await fsp.writeFile(configFile, JSON.stringify({ model_type: 'bert', hidden_size: 64 }));
    await expect(api.GPT.load(folder)).rejects.toThrow(/Expected a supported model_type \('gpt2', 'llama', 'mistral', 'qwen2'\) for .*model_type but received "bert"/);
    expect(api.SUPPORTED_MODEL_TYPES).toEqual(['gpt2', 'llama', 'mistral', 'qwen2']);
  });
});
