// Text in, text out: a folder's tokenizer.json read with @huggingface/tokenizers (model.tokenizer),
// and generateText over generate. The fixture test/fixtures/tokenizer/tokenizer.json is a byte-level
// BPE written by hand (GPT-2's layout, 38 tokens), so every expected id below is derived from it:
//   ids: 0 <|endoftext|> (special), 1..26 the letters a..z, 27 Ġ (a space, in byte-level form),
//        then one id per merge result: 28 Ġt, 29 th, 30 Ġth, 31 the, 32 Ġthe, 33 at, 34 cat, 35 Ġcat,
//        36 on, 37 Ġon
//   merges, by rank: Ġ t, t h, Ġt h, th e, Ġth e, a t, c at, Ġ cat, o n, Ġ on
// The ByteLevel pre-tokenizer splits text into words, each space going with the word after it as
// Ġ; within a word BPE merges, over and over, the adjacent pair of lowest rank until none is in
// the list. E.g. "Ġthe" = Ġ t h e: (Ġ,t) rank 1 -> Ġt h e; (Ġt,h) rank 3 -> Ġth e; (Ġth,e) rank 5
// -> Ġthe = 32. "Ġsat" = Ġ s a t: (a,t) -> Ġ s at, and neither (Ġ,s) nor (s,at) is a merge -> 27 19 33.
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, forEachBackend } from './helpers/backends';

const FIXTURE = path.join(__dirname, 'fixtures', 'tokenizer', 'tokenizer.json');
const V = 38;

let dir: string;
beforeAll(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'attn-tokenizer-'));
});
afterAll(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});
let folderCount = 0;

/** A random model saved to a new folder, with the fixture tokenizer.json beside it unless `bare`. */
async function savedModel(kind: 'gpt2' | 'llama', bare = false): Promise<string> {
  const folder = path.join(dir, `m${folderCount++}`);
  const model = kind === 'gpt2'
    ? api.GPT.random({ vocab_size: V, n_positions: 32, n_embd: 32, n_layer: 2, n_head: 4 }, 1234, { std: 0.5 })
    : api.Llama.random({ vocab_size: V, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 1, num_attention_heads: 4,
      max_position_embeddings: 32 }, 3, { std: 0.5 });
  await model.save(folder);
  if (!bare) await fsp.copyFile(FIXTURE, path.join(folder, 'tokenizer.json'));
  return folder;
}

describe('model.tokenizer: the hand-written byte-level BPE', () => {
  const tokenizer = async () => (await api.loadModel(await savedModel('gpt2'))).tokenizer!;

  it('encodes to the ids its merges give by hand', async () => {
    const t = await tokenizer();
    const cases: [string, number[]][] = [
      ['the cat sat on the mat', [31, 35, 27, 19, 33, 37, 32, 27, 13, 33]],
      // th (rank 2) then the (rank 4); (the, n) is no merge.
      ['then', [31, 14]],
      // No pair of t o t e is a merge: one id per letter.
      ['tote', [20, 15, 20, 5]],
      ['hat', [8, 33]],
      // Runs of spaces: each space but the last stands alone (27), the last goes with the word.
      ['  the  cat ', [27, 32, 27, 35, 27]],
      // The special token is matched whole, before the BPE.
      ['the<|endoftext|>', [31, 0]],
    ];
    for (const [text, ids] of cases) expect(t.encode(text), text).toEqual(ids);
  });

  it('decodes ids to their text; skipSpecialTokens leaves out <|endoftext|>', async () => {
    const t = await tokenizer();
    expect(t.decode([31, 35, 27, 19, 33, 37, 32, 27, 13, 33])).toBe('the cat sat on the mat');
    expect(t.decode(Int32Array.of(28, 8, 5))).toBe(' the');
    expect(t.decode([31, 0])).toBe('the<|endoftext|>');
    expect(t.decode([31, 0], { skipSpecialTokens: true })).toBe('the');
  });

  it('round-trips: decode(encode(s)) === s over its alphabet (a..z and spaces)', async () => {
    const t = await tokenizer();
    for (const s of ['the cat', 'zebra on the hat', ' a  b   c ', 'thethethe', 'cat', 'x']) expect(t.decode(t.encode(s))).toBe(s);
  });
});

forEachBackend('generateText', () => {
  for (const kind of ['gpt2', 'llama'] as const) {
    it(`${kind}: greedy text equals decode(generate(encode(prompt)))`, async () => {
      const model = await api.loadModel(await savedModel(kind));
      const t = model.tokenizer!;
      expect(t).not.toBeNull();
      const opts = { maxNewTokens: 8 };
      const text = model.generateText('the cat sat', opts);
      expect(typeof text).toBe('string');
      expect(text).toBe(t.decode(model.generate(t.encode('the cat sat'), opts), { skipSpecialTokens: true }));
      expect(text.length).toBeGreaterThan(0);
    });
  }

  it('passes the options on: stopping at an eosTokenId ends the text after that token', async () => {
    const model = await api.loadModel(await savedModel('gpt2'));
    const t = model.tokenizer!;
    const free = model.generate(t.encode('the'), { maxNewTokens: 6 });
    // A plain token as the eos is decoded like any other; only special tokens (<|endoftext|>) are left out.
    expect(model.generateText('the', { maxNewTokens: 6, eosTokenId: free[2] })).toBe(t.decode(free.subarray(0, free.indexOf(free[2]) + 1)));
  });

  it('stop sequences end the text right before the first one, however the tokens split it', async () => {
    const model = await api.loadModel(await savedModel('gpt2'));
    const t = model.tokenizer!;
    const opts = { maxNewTokens: 12 };
    const full = model.generateText('the cat sat', opts);
    expect(full.length).toBeGreaterThan(3);
    // A stop string that starts inside the text (not at a token boundary) and one that never occurs.
    const stop = full.slice(2, 4);
    const expected = full.slice(0, full.indexOf(stop));
    let calls = 0;
    const text = model.generateText('the cat sat', { ...opts, stop: ['never-in-this-alphabet-0', stop], onToken: () => { calls++; } });
    expect(text).toBe(expected);
    // Generation stopped at the token that completed the stop string, not after all 12.
    const ids = model.generate(t.encode('the cat sat'), opts);
    const needed = Array.from(ids).findIndex((_, i) => t.decode(ids.subarray(0, i + 1), { skipSpecialTokens: true }).includes(stop)) + 1;
    expect(calls).toBe(needed);
    expect(model.generateText('the cat sat', { ...opts, stop: 'never-in-this-alphabet-0' })).toBe(full);
    expect(() => model.generateText('the', { ...opts, stop: [''] })).toThrow(/Expected a non-empty string for opts\.stop\[0\]/);
    expect(() => model.generateText('the', { ...opts, stop: 3 as never })).toThrow(/Expected a string or an array of strings for opts\.stop/);
    // Stop sequences are text: the token API has no such option.
    expect(() => model.generate([1, 2], { ...opts, stop: 'a' } as never)).toThrow(/only the options .* for opts but received unknown option "stop"/);
  });

  it('no tokenizer.json: tokenizer is null, generateText says why, token APIs work', async () => {
    const model = await api.loadModel(await savedModel('llama', true));
    expect(model.tokenizer).toBeNull();
    expect(() => model.generateText('the cat', { maxNewTokens: 2 })).toThrow(/its folder had no tokenizer\.json/);
    expect(model.generate([1, 2, 3], { maxNewTokens: 2 })).toHaveLength(2);
    expect(api.GPT.random({ vocab_size: V, n_positions: 8, n_embd: 8, n_layer: 1, n_head: 2 }, 1).tokenizer).toBeNull();
  });

  it('bad prompts and a bad tokenizer.json are errors naming them', async () => {
    const model = await api.loadModel(await savedModel('gpt2'));
    expect(() => model.generateText(42 as never, { maxNewTokens: 2 })).toThrow(/Expected a string for prompt but received number 42/);
    expect(() => model.generateText('', { maxNewTokens: 2 })).toThrow(/at least one token for prompt but received ""/);
    const folder = await savedModel('gpt2', true);
    await fsp.writeFile(path.join(folder, 'tokenizer.json'), '{ "model": ');
    await expect(api.loadModel(folder)).rejects.toThrow(/tokenizer\.json is not valid JSON/);
  });
});
