// The Llama family's tensor names (Hugging Face's, linear weights [out, in]) and the shapes a
// config implies for them, and random initialisation. Shared by Llama.load (checked against the
// file headers before any data is read), Llama.fromWeights and Llama.save, so the three agree on
// one list.
import type { DecoderLayerSpec, DecoderSpec, Matrix, WeightDtype } from '../models/decoder-spec';
import { WeightLayout } from '../models/weight-layout';
import { pinned } from '../pinned';
import { seededRandom } from '../random';
import { inverseFrequencies } from '../validate-llama-ops';
import type { Tensor } from '../types';
import { biases, type ResolvedLlamaConfig } from './config';

/** Every tensor a model of this config needs, with its shape, in checkpoint order. */
export function llamaShapes(config: ResolvedLlamaConfig): Map<string, number[]> {
  const { vocab_size: V, hidden_size: E, intermediate_size: I, num_attention_heads: Hq, num_key_value_heads: Hkv, head_dim: D } = config;
  const bias = biases(config);
  const shapes = new Map<string, number[]>([['model.embed_tokens.weight', [V, E]]]);
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const p = `model.layers.${i}.`;
    shapes.set(`${p}input_layernorm.weight`, [E]);
    for (const [name, out] of [['q', Hq * D], ['k', Hkv * D], ['v', Hkv * D]] as const) {
      shapes.set(`${p}self_attn.${name}_proj.weight`, [out, E]);
      if (bias.qkv) shapes.set(`${p}self_attn.${name}_proj.bias`, [out]);
    }
    shapes.set(`${p}self_attn.o_proj.weight`, [E, Hq * D]);
    if (bias.o) shapes.set(`${p}self_attn.o_proj.bias`, [E]);
    shapes.set(`${p}post_attention_layernorm.weight`, [E]);
    for (const [name, out, inF] of [['gate', I, E], ['up', I, E], ['down', E, I]] as const) {
      shapes.set(`${p}mlp.${name}_proj.weight`, [out, inF]);
      if (bias.mlp) shapes.set(`${p}mlp.${name}_proj.bias`, [out]);
    }
  }
  shapes.set('model.norm.weight', [E]);
  if (!config.tie_word_embeddings) shapes.set('lm_head.weight', [V, E]);
  return shapes;
}

/**
 * Checkpoint tensors the model does not use: the rotary inverse frequencies older exports carry
 * (recomputed from rope_theta), and an lm_head.weight stored beside tied embeddings.
 */
export function isIgnoredLlamaTensor(name: string, config: ResolvedLlamaConfig): boolean {
  return /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/.test(name) || (config.tie_word_embeddings && name === 'lm_head.weight');
}

/**
 * Weights of standard deviation `std` (uniform draws, as GPT.random's), norm gains 1 + the same
 * noise, biases random too, so every tensor affects the output.
 */
export function* randomLlamaWeights(config: ResolvedLlamaConfig, seed: number, std: number): Generator<[string, Tensor]> {
  const random = seededRandom(seed);
  // Uniform on [-a, a] has standard deviation a / sqrt(3).
  const a = Math.sqrt(3) * std;
  for (const [name, dims] of llamaShapes(config)) {
    const data = new Float32Array(dims.reduce((p, d) => p * d, 1));
    const base = /norm\.weight$/.test(name) ? 1 : 0;
    for (let i = 0; i < data.length; i++) data[i] = base + a * (2 * random() - 1);
    yield [name, { data, dims }];
  }
}

/**
 * A Llama-family model as a decoder spec (lib/models/decoder-spec.ts), its arrays allocated in
 * `dtype` and every checkpoint tensor placed in them ([out, in] already): q, k and v stacked into
 * one qkv matrix (and their biases into one vector), gate and up into one; the head tied to the
 * embedding unless the config unties it.
 */
export function llamaLayout(config: ResolvedLlamaConfig, dtype: WeightDtype): { layout: WeightLayout; spec: DecoderSpec } {
  const { vocab_size: V, hidden_size: E, intermediate_size: I, num_attention_heads: Hq, num_key_value_heads: Hkv, head_dim: D } = config;
  const bias = biases(config), shapes = llamaShapes(config), layout = new WeightLayout(dtype);
  const place = (name: string, into: Matrix | Float32Array, row = 0) => layout.place(name, shapes.get(name)!, into, row);
  const matrix = (name: string, rows: number, cols: number) => {
    const m = layout.matrix(rows, cols);
    place(name, m);
    return m;
  };
  const vector = (name: string, n: number) => {
    const v = layout.vector(n);
    place(name, v);
    return v;
  };
  /** Tensors `names` (with their biases when `withBias`) stacked by rows into one linear of `cols` inputs. */
  const stacked = (names: readonly [string, number][], cols: number, withBias: boolean) => {
    const rows = names.reduce((n, [, r]) => n + r, 0), w = layout.matrix(rows, cols), b = withBias ? layout.vector(rows) : null;
    let row = 0;
    for (const [name, r] of names) {
      place(`${name}.weight`, w, row);
      if (b) place(`${name}.bias`, b, row);
      row += r;
    }
    return { w, bias: b };
  };
  const tokens = matrix('model.embed_tokens.weight', V, E);
  const layers: DecoderLayerSpec[] = [];
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const p = `model.layers.${i}.`;
    layers.push({
      norm1: { weight: vector(`${p}input_layernorm.weight`, E), bias: null },
      qkv: stacked([[`${p}self_attn.q_proj`, Hq * D], [`${p}self_attn.k_proj`, Hkv * D], [`${p}self_attn.v_proj`, Hkv * D]], E, bias.qkv),
      o: stacked([[`${p}self_attn.o_proj`, E]], Hq * D, bias.o),
      norm2: { weight: vector(`${p}post_attention_layernorm.weight`, E), bias: null },
      up: stacked([[`${p}mlp.gate_proj`, I], [`${p}mlp.up_proj`, I]], E, bias.mlp),
      down: stacked([[`${p}mlp.down_proj`, E]], I, bias.mlp),
    });
  }
  const spec: DecoderSpec = {
    vocab: V, width: E, numHeads: Hq, numKVHeads: Hkv, headDim: D, ffn: I, norm: 'rms', eps: config.rms_norm_eps, mlp: 'swiglu',
    scale: 1 / Math.sqrt(D), window: config.sliding_window ?? 0, dtype, tokens, positions: null,
    rope: { rotaryDim: D, invFreq: pinned(inverseFrequencies(config.rope_theta, D, config.rope_scaling)) },
    layers, finalNorm: { weight: vector('model.norm.weight', E), bias: null },
    head: config.tie_word_embeddings ? null : matrix('lm_head.weight', V, E),
  };
  return { layout, spec };
}
