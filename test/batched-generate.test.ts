// generate(prompts[]) on both backends: one batched call for prompts of different lengths (left
// padding inside), each row token for token what its prompt gives alone, rows stopping on their
// own at eos, prompts untouched, and the errors that name the bad prompt.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { api, forEachBackend } from './helpers/backends';

const GPT_CONFIG = { vocab_size: 50, n_positions: 32, n_embd: 32, n_layer: 2, n_head: 4 };
const LLAMA = path.join(__dirname, 'fixtures', 'llama');
// Lengths 1, 3 and 6, so two rows are padded (by 5 and 3) and one is not.
const PROMPTS = [[7], [3, 9, 27], [11, 4, 40, 2, 33, 18]];
const NEW = 10;

// What this file uses of a model, which GPT and Llama share.
type Model = Pick<api.GPT, 'generate' | 'forward'>;

// Larger weights than GPT-2's 0.02 give spread-out logits, so greedy decoding moves between tokens
// instead of repeating one, and a row that followed another row's positions would show it.
const gpt = (): Model => api.GPT.random(GPT_CONFIG, 1234, { std: 0.5 });
const models: [string, () => Promise<Model>][] = [
  ['GPT.random', async () => gpt()],
  // GQA with rope; Mistral adds the sliding window (4) to the pad mask; Llama 3 scaling with q/k/v biases.
  ['Llama gqa', () => api.loadModel(path.join(LLAMA, 'gqa'))],
  ['Llama mistral', () => api.loadModel(path.join(LLAMA, 'mistral'))],
  ['Llama qwen2-llama3', () => api.loadModel(path.join(LLAMA, 'qwen2-llama3'))],
];

const alone = (m: Model, prompts: number[][], opts: Parameters<Model['generate']>[1]) =>
  prompts.map((p) => Array.from(m.generate(p, opts)));

forEachBackend('generate(prompts[])', () => {
  for (const [name, make] of models) {
    describe(name, () => {
      it('greedy: each row equals its prompt generated alone, and the rows differ', async () => {
        const m = await make();
        const rows = m.generate(PROMPTS, { maxNewTokens: NEW });
        expect(rows).toHaveLength(PROMPTS.length);
        for (const row of rows) expect(row).toBeInstanceOf(Int32Array);
        expect(rows.map((r) => Array.from(r))).toEqual(alone(m, PROMPTS, { maxNewTokens: NEW }));
        // The test would prove little if every row produced the same tokens.
        expect(new Set(rows.map((r) => r.join())).size).toBeGreaterThan(1);
      });

      it('prompts as Int32Arrays and arrays are left unchanged; forward with a batch is unchanged', async () => {
        const m = await make();
        const prompts = [Int32Array.from(PROMPTS[2]), PROMPTS[1].slice(), Int32Array.from(PROMPTS[0])];
        const copies = prompts.map((p) => Array.from(p));
        const tokens = Int32Array.from([...PROMPTS[1], ...PROMPTS[2].slice(0, 3)]);
        const before = m.forward(tokens, { batch: 2 }).data;
        m.generate(prompts, { maxNewTokens: 4 });
        expect(prompts.map((p) => Array.from(p))).toEqual(copies);
        expect(m.forward(tokens, { batch: 2 }).data).toEqual(before);
      });
    });
  }

  it('rows stop on their own at eos: a finished row ends at its eos, the others go on unchanged', () => {
    const m = gpt();
    const free = alone(m, PROMPTS, { maxNewTokens: NEW, eosTokenId: null });
    // Row 1's fourth token, if it does not appear earlier in rows 0 or 2 (else they would stop too).
    const eos = free[1][3];
    const expected = free.map((row) => (row.includes(eos) ? row.slice(0, row.indexOf(eos) + 1) : row));
    expect(expected[1]).toHaveLength(4);
    expect(expected[0].length + expected[2].length).toBeGreaterThan(8);
    const rows = m.generate(PROMPTS, { maxNewTokens: NEW, eosTokenId: eos });
    expect(rows.map((r) => Array.from(r))).toEqual(expected);
    expect(rows.map((r) => Array.from(r))).toEqual(alone(m, PROMPTS, { maxNewTokens: NEW, eosTokenId: eos }));
  });

  it('sampling: each row draws from its own stream of the seed, as it would alone', () => {
    const m = gpt();
    const opts = { maxNewTokens: 6, temperature: 0.9, topK: 10, repetitionPenalty: 1.3, seed: 5 };
    expect(m.generate(PROMPTS, opts).map((r) => Array.from(r))).toEqual(alone(m, PROMPTS, opts));
  });

  it('onToken gets the row; returning false ends that row only', () => {
    const m = gpt();
    const seen: [number, number, number][] = [];
    const rows = m.generate(PROMPTS, { maxNewTokens: 5, onToken: (t, i, row) => (seen.push([t, i, row]), !(row === 0 && i === 1)) });
    expect(rows.map((r) => r.length)).toEqual([2, 5, 5]);
    expect(seen.filter(([, , row]) => row === 2).map(([t]) => t)).toEqual(Array.from(rows[2]));
  });

  it('one prompt of equal-length rows and a batch of one give what generate(prompt) gives', () => {
    const m = gpt();
    const single = Array.from(m.generate(PROMPTS[2], { maxNewTokens: NEW }));
    expect(m.generate([PROMPTS[2]], { maxNewTokens: NEW }).map((r) => Array.from(r))).toEqual([single]);
    expect(m.generate([PROMPTS[2], PROMPTS[2]], { maxNewTokens: NEW }).map((r) => Array.from(r))).toEqual([single, single]);
  });

  it('invalid prompts and sizes are errors naming the argument', () => {
    const m = gpt();
    const gen = (prompts: unknown, maxNewTokens = 2) => () => m.generate(prompts as number[][], { maxNewTokens });
    expect(gen([])).toThrow(/at least one prompt\) for prompt but received an empty array/);
    expect(gen([[1, 2], []])).toThrow(RangeError);
    expect(gen([[1, 2], []])).toThrow(/Expected at least one token for prompts\[1\] but received an empty prompt/);
    expect(gen([[1, 2], [3, 4, 50]])).toThrow(/Expected a token id in \[0, 50\) for prompts\[1\]\[2\] but received 50/);
    expect(gen([[1, 2], [3, 1.5]])).toThrow(/for prompts\[1\]\[1\] but received 1\.5/);
    expect(gen([[1], 'abc'])).toThrow(TypeError);
    expect(gen([[1], 'abc'])).toThrow(/Expected Int32Array or an array of token ids for prompts\[1\]/);
    // The longest prompt bounds the new tokens: 6 + 27 > n_positions 32.
    expect(gen(PROMPTS, 27)).toThrow(/n_positions - longest prompt length \(32 - 6\).*27/);
    expect(m.generate(PROMPTS, { maxNewTokens: 0 }).map((r) => r.length)).toEqual([0, 0, 0]);
  });
});

forEachBackend('MultiHeadAttention positionOffsets', () => {
  const E = 8, H = 2, D = 4;
  const w = (n: number, s: number) => ({ data: Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.3 + s) * 0.5), dims: [E, n / E] });
  const layer = () => new api.MultiHeadAttention({ numHeads: H, rope: { theta: 10000 } }, { wq: w(E * H * D, 1), wk: w(E * H * D, 2), wv: w(E * H * D, 3) });
  const x = Float32Array.from({ length: 2 * 3 * E }, (_, i) => Math.cos(i * 0.7));

  it('row b is rotated at past + i - offsets[b]: zero offsets change nothing, offset = past is position 0', () => {
    const l = layer();
    const cache = new api.KVCache({ batch: 2, numKVHeads: H, headDim: D, maxSeqLen: 8 });
    const y = l.forward({ data: x, dims: [2, 3, E] }, { cache, positionOffsets: Int32Array.of(0, 0) });
    const plain = l.forward({ data: x, dims: [2, 3, E] });
    expect(Array.from(y.data)).toEqual(Array.from(plain.data));
    // After 3 cached (padding) slots hidden by the mask, offset 3 puts slot 3 at position 0: the
    // step computes what it computes as a first token with no cache.
    const step = x.subarray(0, 2 * E);
    const shifted = l.forward({ data: step, dims: [2, 1, E] }, { positionOffsets: Int32Array.of(0, 0) });
    const c2 = new api.KVCache({ batch: 2, numKVHeads: H, headDim: D, maxSeqLen: 8 });
    l.forward({ data: x, dims: [2, 3, E] }, { cache: c2 });
    const keep = Uint8Array.of(0, 0, 0, 1, 0, 0, 0, 1);
    const late = l.forward({ data: step, dims: [2, 1, E] }, { cache: c2, positionOffsets: Int32Array.of(3, 3), attnMask: { data: keep, dims: [2, 1, 1, 4] } });
    for (let i = 0; i < late.data.length; i++) expect(late.data[i]).toBeCloseTo(shifted.data[i], 5);
  });

  it('checks positionOffsets: an Int32Array of B offsets >= 0', () => {
    const l = layer();
    const call = (positionOffsets: unknown) => () => l.forward({ data: x, dims: [2, 3, E] }, { positionOffsets } as never);
    expect(call([0, 0])).toThrow(/Expected an Int32Array of 2 \(B\) offsets >= 0 for opts\.positionOffsets/);
    expect(call(Int32Array.of(0))).toThrow(/for opts\.positionOffsets but received length 1/);
    expect(call(Int32Array.of(0, -1))).toThrow(/Expected an offset >= 0 for opts\.positionOffsets\[1\] but received -1/);
  });
});
