// GPT-2's tensor names and the shapes config.json implies for them, and random initialisation.
// Shared by GPT.load (checked against the file header before any data is read), GPT.fromWeights
// and GPT.save, so the three agree on one list.
import type { Tensor } from '../types';
import type { GPTConfig } from './config';
import { seededRandom } from './sampling';

/** Every tensor a GPT-2 model needs, with its shape, in checkpoint order. */
export function expectedShapes(config: GPTConfig): Map<string, number[]> {
  const { vocab_size: V, n_positions: P, n_embd: E, n_layer: L } = config;
  const shapes = new Map<string, number[]>([['wte.weight', [V, E]], ['wpe.weight', [P, E]]]);
  for (let i = 0; i < L; i++) {
    const h = `h.${i}.`;
    shapes.set(`${h}ln_1.weight`, [E]).set(`${h}ln_1.bias`, [E]);
    shapes.set(`${h}attn.c_attn.weight`, [E, 3 * E]).set(`${h}attn.c_attn.bias`, [3 * E]);
    shapes.set(`${h}attn.c_proj.weight`, [E, E]).set(`${h}attn.c_proj.bias`, [E]);
    shapes.set(`${h}ln_2.weight`, [E]).set(`${h}ln_2.bias`, [E]);
    shapes.set(`${h}mlp.c_fc.weight`, [E, 4 * E]).set(`${h}mlp.c_fc.bias`, [4 * E]);
    shapes.set(`${h}mlp.c_proj.weight`, [4 * E, E]).set(`${h}mlp.c_proj.bias`, [E]);
  }
  shapes.set('ln_f.weight', [E]).set('ln_f.bias', [E]);
  return shapes;
}

/**
 * Checkpoint tensors the model does not use: the causal-mask buffers older exports carry and the
 * LM head, which GPT-2 ties to wte.
 */
export function isIgnoredTensor(name: string): boolean {
  return /^h\.\d+\.attn\.(bias|masked_bias)$/.test(name) || name === 'lm_head.weight';
}

/** Standard normal draws from a seeded uniform source (Box-Muller, both values used). */
function normals(random: () => number): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const value = spare;
      spare = null;
      return value;
    }
    const u = 1 - random(), v = random();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

/**
 * GPT-2's initialisation: weights ~ N(0, std), the residual projections (c_proj) scaled by
 * 1/sqrt(2 n_layer). Unlike GPT-2, biases ~ N(0, std) and LayerNorm gains ~ 1 + N(0, std),
 * shifts ~ N(0, std), so that every tensor affects the output (a swapped or dropped bias shows).
 */
export function randomWeights(config: GPTConfig, seed: number, std: number): Map<string, Tensor> {
  const normal = normals(seededRandom(seed));
  const weights = new Map<string, Tensor>();
  for (const [name, dims] of expectedShapes(config)) {
    const data = new Float32Array(dims.reduce((p, d) => p * d, 1));
    const isNorm = /(^|\.)ln_(1|2|f)\.weight$/.test(name);
    const scale = /c_proj\.weight$/.test(name) ? std / Math.sqrt(2 * config.n_layer) : std;
    for (let i = 0; i < data.length; i++) data[i] = (isNorm ? 1 : 0) + scale * normal();
    weights.set(name, { data, dims });
  }
  return weights;
}
