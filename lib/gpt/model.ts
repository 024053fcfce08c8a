// GPT-2 inference (the seeds' baby transformer, grown up). One block, pre-LayerNorm:
//   x = x + c_proj(attention(ln_1(x)))                     attention: causal, n_head heads
//   x = x + mlp.c_proj(gelu_tanh(mlp.c_fc(ln_2(x))))
// then logits = ln_f(x) @ wte^T (the LM head is tied to the token embedding).
// Shapes: tokens (B, S); x (B*S, E); logits (B, S, V). Conv1D weights are (in, out): y = x W + b.
// The fused c_attn (E, 3E) splits by columns into wq | wk | wv for MultiHeadAttention, and c_proj
// is its wo; GPT.save fuses them back. GPT-2 is one composition of the shared blocks of
// lib/models/blocks.ts (Embedding, PreNormBlock of LayerNorm + attention + GeluMlp, LmHead), all on
// the backend that was active when the model was built.
import { current, type Backend } from '../backend';
import { rangeError, typeError } from '../errors';
import { MultiHeadAttention } from '../mha';
import { Embedding, GeluMlp, LayerNorm, Linear, LmHead, PreNormBlock } from '../models/blocks';
import { CausalLM, integerOption } from '../models/causal-lm';
import { checkNamedWeights, saveDtype } from '../models/checkpoint';
import { generate, generateText, type GenerateOptions, type GenerateTextOptions, type GenerationConfig, type Prompt } from '../models/generate';
import { readTokenizer, type TextTokenizer } from '../models/tokenizer';
import { transpose } from '../models/layout';
import { pinned } from '../pinned';
import type { BackendName, Tensor } from '../types';
import { checkOptions } from '../validate';
import { validateAttention } from '../validate-attention';
import { readCheckpoint, writeCheckpoint } from './checkpoint';
import { parseConfig, type GPTConfig } from './config';
import type { GPTDecoder } from './decoder';
import type { SaveDtype } from './safetensors';
import { expectedShapes, isIgnoredTensor, randomWeights } from './weights';

/** One GPT-2 block: the shared pre-norm block plus the split q/k/v arrays that GPT.save fuses back. */
interface Block {
  block: PreNormBlock;
  ln1: LayerNorm; ln2: LayerNorm; fc: Linear; proj: Linear;
  wq: Float32Array; wk: Float32Array; wv: Float32Array; bq: Float32Array; bk: Float32Array; bv: Float32Array;
  wo: Float32Array; bo: Float32Array;
}

export interface RandomOptions {
  /** Standard deviation of the weights (GPT-2: 0.02). Larger values give sharper attention. */
  std?: number;
}

export interface SaveOptions {
  /** How model.safetensors stores the weights. Default 'F32'. */
  dtype?: SaveDtype;
}

/** Columns [from, from + width) of a (rows, cols) matrix, backed by a SharedArrayBuffer so the attention layer uses it without copying. */
function columns(data: Float32Array, rows: number, cols: number, from: number, width: number): Float32Array {
  const out = new Float32Array(new SharedArrayBuffer(rows * width * 4));
  for (let r = 0; r < rows; r++) out.set(data.subarray(r * cols + from, r * cols + from + width), r * width);
  return out;
}

/**
 * A GPT-2 model for inference. Build it with GPT.load (a Hugging Face folder), GPT.random or
 * GPT.fromWeights; it runs on the backend that was active when it was built.
 * @example
 * const model = await GPT.load('./gpt2');
 * const next = model.generate([464, 3290], { maxNewTokens: 20 }); // up to 20 token ids: it stops after <|endoftext|> (50256)
 */
export class GPT {
  /** The checked hyperparameters. */
  readonly config: Readonly<GPTConfig>;
  /** The backend this model runs on. */
  readonly backend: BackendName;
  /**
   * Defaults for generate. GPT.load fills eosTokenId from the folder's generation_config.json or
   * config.json (GPT-2's: 50256, <|endoftext|>); GPT.random and GPT.fromWeights leave it empty.
   */
  readonly generationConfig: Readonly<GenerationConfig>;
  /**
   * The folder's tokenizer (tokenizer.json, read by load and loadModel) for encode/decode and
   * generateText; null when the folder had none or the model was not loaded from a folder.
   */
  readonly tokenizer: TextTokenizer | null;
  private readonly ops: Backend;
  private readonly lm: CausalLM;
  private readonly lnf: LayerNorm;
  private readonly blocks: Block[];

  private constructor(config: GPTConfig, weights: ReadonlyMap<string, Tensor>, eosTokenId: readonly number[] = [],
    tokenizer: TextTokenizer | null = null) {
    this.config = Object.freeze({ ...config });
    this.tokenizer = tokenizer;
    this.generationConfig = Object.freeze({ eosTokenId: Object.freeze([...eosTokenId]) });
    const ops = current();
    this.ops = ops;
    this.backend = ops.name;
    const E = config.n_embd, V = config.vocab_size, eps = config.layer_norm_epsilon;
    const get = (name: string): Float32Array => (weights.get(name) as Tensor).data;
    const wte = get('wte.weight');
    const embedding = new Embedding(ops, wte, get('wpe.weight'), E);
    this.lnf = new LayerNorm(ops, get('ln_f.weight'), get('ln_f.bias'), eps);
    // The LM head is tied to wte; a transposed copy makes it a plain row-major matmul on either backend.
    const head = new LmHead(this.lnf, new Linear(ops, transpose(wte, V, E), null, E, V));
    this.blocks = [];
    for (let i = 0; i < config.n_layer; i++) {
      const p = (name: string): Float32Array => get(`h.${i}.${name}`);
      const cAttn = p('attn.c_attn.weight'), cAttnB = p('attn.c_attn.bias');
      const wq = columns(cAttn, E, 3 * E, 0, E), wk = columns(cAttn, E, 3 * E, E, E), wv = columns(cAttn, E, 3 * E, 2 * E, E);
      // The attention layer reads its weights from SharedArrayBuffer-backed memory (the async-safety
      // policy, lib/pinned.ts): pinned here, once, and kept as the model's own arrays, so the layer
      // uses them without a second copy.
      const bq = pinned(cAttnB.subarray(0, E)), bk = pinned(cAttnB.subarray(E, 2 * E)), bv = pinned(cAttnB.subarray(2 * E));
      const wo = pinned(p('attn.c_proj.weight')), bo = pinned(p('attn.c_proj.bias'));
      const t = (data: Float32Array, dims: number[]): Tensor => ({ data, dims });
      const attn = new MultiHeadAttention({ numHeads: config.n_head, causal: true }, {
        wq: t(wq, [E, E]), wk: t(wk, [E, E]), wv: t(wv, [E, E]), wo: t(wo, [E, E]),
        bq: t(bq, [E]), bk: t(bk, [E]), bv: t(bv, [E]), bo: t(bo, [E]),
      });
      const ln1 = new LayerNorm(ops, p('ln_1.weight'), p('ln_1.bias'), eps);
      const ln2 = new LayerNorm(ops, p('ln_2.weight'), p('ln_2.bias'), eps);
      const fc = new Linear(ops, p('mlp.c_fc.weight'), p('mlp.c_fc.bias'), E, 4 * E);
      const proj = new Linear(ops, p('mlp.c_proj.weight'), p('mlp.c_proj.bias'), 4 * E, E);
      const block = new PreNormBlock(ops, ln1, attn, ln2, new GeluMlp(ops, fc, proj));
      this.blocks.push({ block, ln1, ln2, fc, proj, wq, wk, wv, bq, bk, bv, wo, bo });
    }
    this.lm = new CausalLM(ops, embedding, this.blocks.map((b) => b.block), head, {
      vocab: V, maxPositions: config.n_positions, maxPositionsKey: 'n_positions', width: E, numKVHeads: config.n_head, headDim: E / config.n_head,
    });
  }

  /**
   * Builds a model from GPT-2-named tensors (no `transformer.` prefix), checking every shape
   * against the config and every value for NaN/infinity. The arrays are used in place, except
   * c_attn (split into q, k, v copies) and wte (a transposed copy serves the LM head).
   * @param config the hyperparameters (as in config.json)
   * @param weights tensor name -> Tensor, e.g. 'h.0.attn.c_attn.weight' -> [n_embd, 3*n_embd]
   */
  static fromWeights(config: GPTConfig, weights: ReadonlyMap<string, Tensor> | Record<string, Tensor>): GPT {
    const checked = parseConfig(config);
    const map = checkNamedWeights(weights, expectedShapes(checked), isIgnoredTensor, 'GPT-2');
    return new GPT(checked, map);
  }

  /**
   * A model with random weights (GPT-2's initialisation, see RandomOptions), for demos and benchmarks.
   * @param config hyperparameters; layer_norm_epsilon defaults to 1e-5
   * @param seed integer seed; the same seed gives the same weights
   * @example const model = GPT.random({ vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12 }, 1);
   */
  static random(config: Omit<GPTConfig, 'layer_norm_epsilon'> & { layer_norm_epsilon?: number }, seed = 0, opts?: RandomOptions): GPT {
    const checked = parseConfig(config);
    integerOption(seed, 'seed', Number.MIN_SAFE_INTEGER);
    const o = checkOptions(opts, 'opts', ['std']);
    const std = o.std ?? 0.02;
    if (typeof std !== 'number' || !(std >= 0) || !Number.isFinite(std)) throw rangeError('opts.std', 'a finite number >= 0', String(std));
    return new GPT(checked, randomWeights(checked, seed, std));
  }

  /**
   * Loads a Hugging Face style GPT-2 folder: config.json and model.safetensors (F32, F16, BF16 or
   * F64 tensors, names with or without a `transformer.` prefix). Every shape is checked against
   * config.json before any tensor data is read; a config.json whose model_type is not 'gpt2' is
   * refused by name. The eos_token_id of generation_config.json, else of config.json, becomes
   * generationConfig.eosTokenId; a tokenizer.json (and tokenizer_config.json) becomes the tokenizer.
   * @param dir the folder
   */
  static async load(dir: string): Promise<GPT> {
    if (typeof dir !== 'string' || dir.length === 0) throw typeError('dir', 'a non-empty folder path', dir);
    const { config, weights, eosTokenId } = await readCheckpoint(dir);
    return new GPT(config, weights, eosTokenId, await readTokenizer(dir));
  }

  /**
   * The weights under their GPT-2 names (c_attn fused again), in checkpoint order. The arrays are
   * the model's own except c_attn's; do not modify them.
   */
  namedWeights(): Map<string, Tensor> {
    const E = this.config.n_embd;
    const out = new Map<string, Tensor>();
    for (const [name, dims] of expectedShapes(this.config)) {
      const match = /^h\.(\d+)\.(.+)$/.exec(name);
      let data: Float32Array;
      if (!match) {
        const e = this.lm.embedding;
        data = name === 'wte.weight' ? e.tokens : name === 'wpe.weight' ? e.positions! : name === 'ln_f.weight' ? this.lnf.gamma : this.lnf.beta;
      } else {
        const b = this.blocks[Number(match[1])];
        switch (match[2]) {
          case 'attn.c_attn.weight':
            data = new Float32Array(E * 3 * E);
            for (let r = 0; r < E; r++) {
              data.set(b.wq.subarray(r * E, r * E + E), r * 3 * E);
              data.set(b.wk.subarray(r * E, r * E + E), r * 3 * E + E);
              data.set(b.wv.subarray(r * E, r * E + E), r * 3 * E + 2 * E);
            }
            break;
          case 'attn.c_attn.bias':
            data = new Float32Array(3 * E);
            data.set(b.bq, 0);
            data.set(b.bk, E);
            data.set(b.bv, 2 * E);
            break;
          default: {
            const fields: Record<string, Float32Array> = {
              'ln_1.weight': b.ln1.gamma, 'ln_1.bias': b.ln1.beta, 'ln_2.weight': b.ln2.gamma, 'ln_2.bias': b.ln2.beta,
              'attn.c_proj.weight': b.wo, 'attn.c_proj.bias': b.bo, 'mlp.c_fc.weight': b.fc.weight, 'mlp.c_fc.bias': b.fc.bias!,
              'mlp.c_proj.weight': b.proj.weight, 'mlp.c_proj.bias': b.proj.bias!,
            };
            data = fields[match[2]];
          }
        }
      }
      out.set(name, { data, dims });
    }
    return out;
  }

  /**
   * Writes config.json (with generationConfig.eosTokenId as eos_token_id) and model.safetensors
   * (GPT-2 tensor names) into `dir`, creating it.
   * @param dir output folder
   * @param opts dtype: 'F32' (default), 'F16' or 'BF16' (rounded to nearest even)
   */
  async save(dir: string, opts?: SaveOptions): Promise<void> {
    if (typeof dir !== 'string' || dir.length === 0) throw typeError('dir', 'a non-empty folder path', dir);
    const o = checkOptions(opts, 'opts', ['dtype']);
    await writeCheckpoint(dir, this.config, this.namedWeights(), saveDtype(o.dtype), this.generationConfig.eosTokenId);
  }

  /**
   * Full causal forward pass.
   * @param tokens token ids, `batch` sequences of equal length back to back (B*S values)
   * @param opts batch: number of sequences (default 1)
   * @returns logits [B, S, vocab_size]
   */
  forward(tokens: Int32Array, opts?: { batch?: number }): Tensor {
    const o = checkOptions(opts, 'opts', ['batch']);
    return this.lm.forward(tokens, o.batch);
  }

  /**
   * Softmax attention probabilities of one layer and head (the attention op's qkMatmulOutputMode 3):
   * row i (query) over columns j (keys), zero above the diagonal.
   * @param tokens one sequence of token ids
   * @param opts layer in [0, n_layer), head in [0, n_head)
   * @returns weights [S, S]
   */
  attentionWeights(tokens: Int32Array, opts: { layer: number; head: number }): Tensor {
    const o = checkOptions(opts, 'opts', ['layer', 'head']);
    const { S } = this.lm.checkSequence(tokens, 1, 'tokens');
    const layer = integerOption(o.layer, 'opts.layer', 0), head = integerOption(o.head, 'opts.head', 0);
    if (layer >= this.config.n_layer) throw rangeError('opts.layer', `an integer in [0, ${this.config.n_layer})`, String(layer));
    if (head >= this.config.n_head) throw rangeError('opts.head', `an integer in [0, ${this.config.n_head})`, String(head));
    const E = this.config.n_embd;
    const x = this.lm.embedding.forward(tokens, 1, S, 0);
    this.lm.run(x, 1, S, null, null, layer);
    const b = this.blocks[layer];
    const h = new Float32Array(S * E);
    b.ln1.forward(x, S, h);
    const project = (w: Float32Array, bias: Float32Array) => new Linear(this.ops, w, bias, E, E).forward(h, S);
    const q = project(b.wq, b.bq), k = project(b.wk, b.bk), v = project(b.wv, b.bv);
    const H = this.config.n_head, dims = [1, S, E];
    const { plan } = validateAttention({ data: q, dims }, { data: k, dims }, { data: v, dims },
      { isCausal: true, qNumHeads: H, kvNumHeads: H, qkMatmulOutputMode: 3 });
    const probabilities = new Float32Array(H * S * S);
    this.ops.attention(plan, q, k, v, new Float32Array(S * E), probabilities);
    const weights = probabilities.slice(head * S * S, (head + 1) * S * S);
    return { data: weights, dims: [S, S] };
  }

  /**
   * Starts an incremental decode: one KVCache per layer, room for `maxSeqLen` tokens (default n_positions).
   * Call dispose() when done to free the native cache memory at once.
   */
  decoder(maxSeqLen = this.config.n_positions): GPTDecoder {
    return this.lm.decoder(maxSeqLen);
  }

  /**
   * Generates up to `maxNewTokens` tokens after the prompt, one KV-cached step per token, stopping
   * early after an end-of-sequence token or when onToken returns false. Given several prompts (an
   * array of them), runs them together in one batch, left-padded inside (each layer runs once per
   * step for all rows): row b is what prompts[b] gives alone, each row stopping on its own.
   * @param prompt token ids, or an array of prompts of any lengths (not modified)
   * @param opts see GenerateOptions
   * @returns the new tokens only (an array of them for a batch), the stopping token (an eosTokenId, or the one onToken refused) included
   * @example
   * const model = await GPT.load('./gpt2'); // eos 50256 from config.json
   * const ids = model.generate([464, 3290], { maxNewTokens: 40, temperature: 0.8, topP: 0.9, repetitionPenalty: 1.2, seed: 1 });
   * const [a, b] = model.generate([[464, 3290], [15496]], { maxNewTokens: 20 });
   */
  generate(prompt: Prompt, opts: GenerateOptions): Int32Array;
  generate(prompts: readonly Prompt[], opts: GenerateOptions): Int32Array[];
  generate(input: Prompt | readonly Prompt[], opts: GenerateOptions): Int32Array | Int32Array[] {
    return generate(this.lm, this.generationConfig, input, opts);
  }

  /**
   * Generates a continuation of `prompt` as text: the prompt encoded with `tokenizer`, generate
   * (same options, e.g. { maxNewTokens: 40, temperature: 0.8, seed: 1 }), the new tokens decoded
   * without special tokens. Needs a tokenizer: a folder loaded with a tokenizer.json.
   * @param prompt the text to continue
   * @returns only the new text
   */
  generateText(prompt: string, opts: GenerateTextOptions): string {
    return generateText(this.lm, this.generationConfig, this.tokenizer, prompt, opts);
  }
}
