// The Llama family's tensor names (Hugging Face's, linear weights [out, in]) and the shapes a
// config implies for them, and random initialisation. Shared by Llama.load (checked against the
// file headers before any data is read), Llama.fromWeights and Llama.save, so the three agree on
// one list.
import { seededRandom } from '../random';
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
export function randomLlamaWeights(config: ResolvedLlamaConfig, seed: number, std: number): Map<string, Tensor> {
  const random = seededRandom(seed);
  const weights = new Map<string, Tensor>();
  // Uniform on [-a, a] has standard deviation a / sqrt(3).
  const a = Math.sqrt(3) * std;
  for (const [name, dims] of llamaShapes(config)) {
    const data = new Float32Array(dims.reduce((p, d) => p * d, 1));
    const base = /norm\.weight$/.test(name) ? 1 : 0;
    for (let i = 0; i < data.length; i++) data[i] = base + a * (2 * random() - 1);
    weights.set(name, { data, dims });
  }
  return weights;
}
