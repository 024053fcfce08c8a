// GPT-2's tensor names and the shapes config.json implies for them, and random initialisation.
// Shared by GPT.load (checked against the file header before any data is read), GPT.fromWeights
// and GPT.save, so the three agree on one list.
import type { DecoderLayerSpec, DecoderSpec, WeightDtype } from '../models/decoder-spec';
import { WeightLayout } from '../models/weight-layout';
import type { Tensor } from '../types';
import type { GPTConfig } from './config';
import { seededRandom } from '../random';

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

/** Index of the first NaN or infinity, or -1 (a plain loop: findIndex's callback is ~10x slower on 10^8 weights). */
export function firstNonFinite(data: Float32Array): number {
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return i;
  return -1;
}

/**
 * GPT-2's initialisation scales: weights of standard deviation `std`, the residual projections
 * (c_proj) scaled by 1/sqrt(2 n_layer). The draws are uniform with that standard deviation, not
 * normal: a GPT-2-small-sized model needs 124M of them, and uniform ones cost a fraction of
 * Box-Muller's log/sqrt/sin. Unlike GPT-2, biases, LayerNorm shifts and (1 +) gains are random
 * too, so that every tensor affects the output (a swapped or dropped bias shows in tests).
 * Yields one tensor at a time, so a model is built holding its own arrays and one float32 tensor.
 */
export function* randomWeights(config: GPTConfig, seed: number, std: number): Generator<[string, Tensor]> {
  const random = seededRandom(seed);
  for (const [name, dims] of expectedShapes(config)) {
    const data = new Float32Array(dims.reduce((p, d) => p * d, 1));
    const isNorm = /(^|\.)ln_(1|2|f)\.weight$/.test(name);
    // Uniform on [-a, a] has standard deviation a / sqrt(3).
    const a = Math.sqrt(3) * (/c_proj\.weight$/.test(name) ? std / Math.sqrt(2 * config.n_layer) : std);
    for (let i = 0; i < data.length; i++) data[i] = (isNorm ? 1 : 0) + a * (2 * random() - 1);
    yield [name, { data, dims }];
  }
}

/**
 * GPT-2 as a decoder spec (lib/models/decoder-spec.ts), its arrays allocated in `dtype` and every
 * checkpoint tensor placed in them: the Conv1D weights ([in, out]) transposed into [out, in]
 * matrices, c_attn's columns becoming the qkv matrix's rows; the head tied to wte.
 */
export function gptLayout(config: GPTConfig, dtype: WeightDtype): { layout: WeightLayout; spec: DecoderSpec } {
  const { vocab_size: V, n_positions: P, n_embd: E, n_layer: L, n_head: H } = config;
  const layout = new WeightLayout(dtype);
  const shapes = expectedShapes(config);
  const matrix = (name: string, rows: number, cols: number, transpose: boolean) => {
    const m = layout.matrix(rows, cols);
    layout.place(name, shapes.get(name)!, m, 0, transpose);
    return m;
  };
  const vector = (name: string) => {
    const v = layout.vector(shapes.get(name)!.reduce((p, d) => p * d, 1));
    layout.place(name, shapes.get(name)!, v);
    return v;
  };
  const norm = (prefix: string) => ({ weight: vector(`${prefix}.weight`), bias: vector(`${prefix}.bias`) });
  const tokens = matrix('wte.weight', V, E, false), positions = matrix('wpe.weight', P, E, false);
  const layers: DecoderLayerSpec[] = [];
  for (let i = 0; i < L; i++) {
    const h = `h.${i}.`;
    const linear = (name: string, out: number, inF: number) => ({ w: matrix(`${h}${name}.weight`, out, inF, true), bias: vector(`${h}${name}.bias`) });
    layers.push({
      norm1: norm(`${h}ln_1`), qkv: linear('attn.c_attn', 3 * E, E), o: linear('attn.c_proj', E, E),
      norm2: norm(`${h}ln_2`), up: linear('mlp.c_fc', 4 * E, E), down: linear('mlp.c_proj', E, 4 * E),
    });
  }
  const spec: DecoderSpec = {
    vocab: V, width: E, numHeads: H, numKVHeads: H, headDim: E / H, ffn: 4 * E, norm: 'layer', eps: config.layer_norm_epsilon,
    mlp: 'gelu', scale: 1 / Math.sqrt(E / H), window: 0, dtype, tokens, positions, rope: null, layers, finalNorm: norm('ln_f'), head: null,
  };
  return { layout, spec };
}
