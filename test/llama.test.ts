// The Llama family (Llama, Mistral, Qwen2) on both backends against PyTorch: the fixtures in
// test/fixtures/llama/ are small random models in Hugging Face's layout with the logits and greedy
// tokens of a reference written from transformers' modeling code (scripts/make-llama-fixtures.py,
// run by hand: CI has no torch). Also KV-cached decoding against the full forward, loadModel's
// dispatch, config errors and save/load round trips.
import { promises as fsp, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, forEachBackend } from './helpers/backends';

const FIXTURES = path.join(__dirname, 'fixtures', 'llama');
const NAMES = ['gqa', 'head-dim', 'qwen2-llama3', 'mistral', 'bf16'] as const;
// Worst |logit - torch| over every fixture, the prompt and the batch, per kernel set (logits up to
// ~4.5): avx512/avx2 3.0e-6, scalar 3.2e-6, JS 3.0e-6; BF16 files no worse (the reference runs in
// float32 on the same bf16-rounded weights). Bound ~3x that. Dropping Mistral's window or the Llama 3
// scaling moves logits by far more (checked below).
const TOL = 1e-5;

interface Expected {
  prompt: number[]; logits: number[]; batch: number[][]; batchLogits: number[]; greedy: number[];
}
const expected = (name: string): Expected => JSON.parse(readFileSync(path.join(FIXTURES, name, 'expected.json'), 'utf8'));
const fixtureConfig = (name: string): Record<string, unknown> => JSON.parse(readFileSync(path.join(FIXTURES, name, 'config.json'), 'utf8'));

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

let dir: string;
beforeAll(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'attn-llama-'));
});
afterAll(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});
let folderCount = 0;
const newFolder = (): string => path.join(dir, `m${folderCount++}`);

forEachBackend('Llama family against PyTorch', () => {
  for (const name of NAMES) {
    it(`${name}: logits of a prompt and of a batch, and greedy tokens`, async () => {
      const e = expected(name);
      const model = await api.loadModel(path.join(FIXTURES, name));
      expect(model).toBeInstanceOf(api.Llama);
      const logits = model.forward(Int32Array.from(e.prompt));
      expect(logits.dims).toEqual([1, e.prompt.length, 64]);
      expect(maxDiff(logits.data, e.logits)).toBeLessThan(TOL);
      const batch = model.forward(Int32Array.from(e.batch.flat()), { batch: 2 });
      expect(batch.dims).toEqual([2, e.batch[0].length, 64]);
      expect(maxDiff(batch.data, e.batchLogits)).toBeLessThan(TOL);
      expect(Array.from(model.generate(e.prompt, { maxNewTokens: 8 }))).toEqual(e.greedy);
    });
  }

  it('the window and the rope scaling matter: without them the logits miss by far more than the bound', async () => {
    for (const [name, change] of [['mistral', { sliding_window: null }], ['qwen2-llama3', { rope_scaling: null }]] as const) {
      const model = await api.Llama.load(path.join(FIXTURES, name));
      const other = api.Llama.fromWeights({ ...model.config, ...change }, model.namedWeights());
      const e = expected(name);
      expect(maxDiff(model.forward(Int32Array.from(e.prompt)).data, e.logits)).toBeLessThan(TOL);
      expect(maxDiff(other.forward(Int32Array.from(e.prompt)).data, e.logits)).toBeGreaterThan(1000 * TOL);
    }
  });

  it('KV-cached decoding, past the sliding window, equals the full forward', async () => {
    for (const name of ['mistral', 'gqa']) {
      const model = await api.loadModel(path.join(FIXTURES, name));
      const tokens = Int32Array.from([...expected(name).prompt, ...expected(name).greedy]);
      const full = model.forward(tokens).data;
      const decoder = model.decoder(tokens.length);
      const rows = [decoder.append(tokens.subarray(0, 3)).data];
      for (let i = 3; i < tokens.length; i++) rows.push(decoder.append(tokens.subarray(i, i + 1)).data);
      decoder.dispose();
      for (let i = 0; i < rows.length; i++) {
        const at = i + 2;
        expect(maxDiff(rows[i], full.subarray(at * 64, (at + 1) * 64)), `${name} position ${at}`).toBeLessThan(TOL);
      }
    }
  });

  it('save and load round trip: F32 exactly, BF16 as rounded weights, and from shards', async () => {
    const model = await api.Llama.load(path.join(FIXTURES, 'head-dim'));
    const prompt = Int32Array.from(expected('head-dim').prompt);
    const logits = model.forward(prompt).data;
    const f32 = newFolder();
    await model.save(f32);
    const again = await api.loadModel(f32);
    expect(again.config).toEqual(model.config);
    expect(again.forward(prompt).data).toEqual(logits);
    const bf16 = newFolder();
    await model.save(bf16, { dtype: 'BF16' });
    expect(JSON.parse(await fsp.readFile(path.join(bf16, 'config.json'), 'utf8'))).toMatchObject({ model_type: 'llama', torch_dtype: 'bfloat16', head_dim: 12 });
    const rounded = await api.Llama.load(bf16);
    const diff = maxDiff(rounded.forward(prompt).data, logits);
    expect(diff).toBeGreaterThan(0);
    expect(diff).toBeLessThan(0.1);
    // The same tensors as one shard listed by model.safetensors.index.json.
    const sharded = newFolder();
    await fsp.mkdir(sharded);
    await fsp.copyFile(path.join(f32, 'config.json'), path.join(sharded, 'config.json'));
    await fsp.copyFile(path.join(f32, 'model.safetensors'), path.join(sharded, 'model-00001-of-00001.safetensors'));
    const weightMap = Object.fromEntries([...model.namedWeights().keys()].map((n) => [n, 'model-00001-of-00001.safetensors']));
    await fsp.writeFile(path.join(sharded, 'model.safetensors.index.json'), JSON.stringify({ weight_map: weightMap }));
    expect((await api.Llama.load(sharded)).forward(prompt).data).toEqual(logits);
  });
});

describe('loadModel', () => {
  it('returns a GPT for gpt2, a Llama for llama, mistral and qwen2', async () => {
    const gptFolder = newFolder();
    await api.GPT.random({ vocab_size: 20, n_positions: 8, n_embd: 8, n_layer: 1, n_head: 2 }, 1).save(gptFolder);
    expect(await api.loadModel(gptFolder)).toBeInstanceOf(api.GPT);
    for (const name of ['gqa', 'mistral', 'qwen2-llama3']) {
      const model = await api.loadModel(path.join(FIXTURES, name));
      expect(model).toBeInstanceOf(api.Llama);
      expect((model as InstanceType<typeof api.Llama>).config.model_type).toBe(fixtureConfig(name).model_type);
    }
  });

  it('names a missing or unknown model_type, and refuses a Llama folder in GPT.load', async () => {
    const folder = newFolder();
    await fsp.mkdir(folder);
    const config = path.join(folder, 'config.json');
    await fsp.writeFile(config, JSON.stringify({ model_type: 'bert' }));
    await expect(api.loadModel(folder)).rejects.toThrow(/Expected a supported model_type \('gpt2', 'llama', 'mistral', 'qwen2'\) for .*config\.json\.model_type but received "bert"/);
    await fsp.writeFile(config, JSON.stringify({ hidden_size: 8 }));
    await expect(api.loadModel(folder)).rejects.toThrow(/Expected a model_type string .* for .*config\.json\.model_type but received undefined/);
    await expect(api.GPT.load(path.join(FIXTURES, 'gqa'))).rejects.toThrow(/Expected 'gpt2' .*but received "llama"/);
    await expect(api.Llama.load(path.join(FIXTURES, 'gqa', 'nowhere'))).rejects.toThrow(/ENOENT/);
  });
});

describe('Llama config and weights errors', () => {
  const base = {
    vocab_size: 16, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 1, num_attention_heads: 4, max_position_embeddings: 16,
  };
  it.each([
    [{ num_key_value_heads: 3 }, /a divisor of num_attention_heads \(4\) for config\.num_key_value_heads but received 3/],
    [{ num_attention_heads: 3 }, /a divisor of hidden_size \(16\) when there is no head_dim for config\.num_attention_heads/],
    [{ hidden_act: 'gelu' }, /'silu' .* for config\.hidden_act but received "gelu"/],
    [{ rope_scaling: { rope_type: 'yarn', factor: 2 } }, /'llama3' .* for config\.rope_scaling\.rope_type but received "yarn"/],
    [{ rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 4, high_freq_factor: 1, original_max_position_embeddings: 8 } },
      /a finite number > 4 for config\.rope_scaling\.high_freq_factor but received 1/],
    [{ model_type: 'mistral', attention_bias: true }, /false or no value \(a mistral model has fixed biases\) for config\.attention_bias/],
    [{ model_type: 'qwen2', use_sliding_window: true }, /per-layer windows are not supported\) for config\.use_sliding_window/],
    [{ model_type: 'gpt2' }, /Expected 'llama', 'mistral', 'qwen2' .* for config\.model_type but received "gpt2"/],
    [{ max_position_embeddings: undefined }, /a positive integer for config\.max_position_embeddings but received undefined/],
  ] as [Record<string, unknown>, RegExp][])('refuses %j', (change, message) => {
    expect(() => api.Llama.random({ ...base, ...change } as never, 1)).toThrow(message);
  });

  it('fromWeights names a missing, misshapen or unexpected tensor', () => {
    const weights = api.Llama.random(base, 1).namedWeights();
    const without = new Map(weights);
    without.delete('model.norm.weight');
    expect(() => api.Llama.fromWeights(base, without)).toThrow(/a tensor model\.norm\.weight of shape \[16\] for weights but received none/);
    const transposed = new Map(weights).set('model.layers.0.mlp.up_proj.weight', { data: new Float32Array(24 * 16), dims: [16, 24] });
    expect(() => api.Llama.fromWeights(base, transposed)).toThrow(/shape \[24, 16\] \(from the config\) for model\.layers\.0\.mlp\.up_proj\.weight/);
    const extra = new Map(weights).set('model.layers.0.self_attn.q_proj.bias', { data: new Float32Array(16), dims: [16] });
    expect(() => api.Llama.fromWeights(base, extra)).toThrow(/only llama tensor names .*unexpected tensor model\.layers\.0\.self_attn\.q_proj\.bias/);
  });

  it('generate and forward keep to max_position_embeddings', () => {
    const model = api.Llama.random(base, 1);
    expect(() => model.forward(new Int32Array(17))).toThrow(/max_position_embeddings \(16\)/);
    expect(() => model.generate([1, 2, 3], { maxNewTokens: 14 })).toThrow(/max_position_embeddings - prompt length \(16 - 3\)/);
  });
});

forEachBackend('MultiHeadAttention rope and slidingWindow options', () => {
  const E = 8, w = (n: number) => ({ data: Float32Array.from({ length: E * n }, (_, i) => Math.sin(i + n)), dims: [E, n] });
  const weights = { wq: w(8), wk: w(4), wv: w(4) };
  it.each([
    [{ rope: { theta: -1 } }, /a finite number > 0 for config\.rope\.theta but received -1/],
    [{ rope: { theta: 10, rotaryDim: 3 } }, /an even integer in \[2, 4\] \(headDim\) for config\.rope\.rotaryDim but received 3/],
    [{ rope: { theta: 10, scaling: { rope_type: 'llama3', factor: 0 } } }, /config\.rope\.scaling\.factor/],
    [{ rope: { theta: 10, base: 2 } }, /config\.rope/],
    [{ slidingWindow: 0 }, /config\.slidingWindow/],
    [{ slidingWindow: 2, causal: false }, /undefined for a non-causal layer .* for config\.slidingWindow/],
  ] as [Record<string, unknown>, RegExp][])('refuses %j', (change, message) => {
    expect(() => new api.MultiHeadAttention({ numHeads: 2, numKVHeads: 1, ...change }, weights)).toThrow(message);
  });

  it('a window combines with a given mask: same as the mask with the out-of-window keys hidden', () => {
    const layer = new api.MultiHeadAttention({ numHeads: 2, numKVHeads: 1, rope: { theta: 100 }, slidingWindow: 3 }, weights);
    const plain = new api.MultiHeadAttention({ numHeads: 2, numKVHeads: 1, rope: { theta: 100 } }, weights);
    const S = 6, x = { data: Float32Array.from({ length: S * E }, (_, i) => Math.cos(i)), dims: [1, S, E] };
    const given = Uint8Array.from({ length: S * S }, (_, i) => (i % 5 === 1 ? 0 : 1));
    const windowed = Uint8Array.from(given, (v, i) => (Math.floor(i / S) - (i % S) >= 3 ? 0 : v));
    const y = layer.forward(x, { attnMask: { data: given, dims: [S, S] } }).data;
    expect(y).toEqual(plain.forward(x, { attnMask: { data: windowed, dims: [S, S] } }).data);
  });
});
