// The Llama family (Llama 2/3, Mistral, Qwen2, SmolLM, TinyLlama): one composition of the shared
// blocks of lib/models/blocks.ts. One block, pre-RMSNorm:
//   x = x + o_proj(attention(rope(q_proj(h)), rope(k_proj(h)), v_proj(h)))    h = input_layernorm(x)
//   x = x + down_proj(silu(gate_proj(h)) * up_proj(h))                          h = post_attention_layernorm(x)
// then logits = norm(x) @ lm_head^T (or embed_tokens^T when tied). Attention is grouped-query
// (num_key_value_heads), rotary (rope_theta, rope_scaling) and, for Mistral, windowed; the
// rotary embedding and the window live in the attention layer (lib/mha.ts), so the KV cache holds
// rotated keys. Shapes: tokens (B, S); x (B*S, hidden); logits (B, S, vocab).
// Checkpoints store linear weights [out, in] (nn.Linear); the blocks multiply by [in, out], so
// each is transposed once at construction into a copy the model keeps (the loaded array is
// dropped), and namedWeights()/save() transpose back.
import { current } from '../backend';
import { typeError, rangeError } from '../errors';
import type { SaveDtype } from '../gpt/safetensors';
import type { GPTDecoder } from '../gpt/decoder';
import { MultiHeadAttention } from '../mha';
import { Embedding, Linear, LmHead, PreNormBlock, RmsNorm, SwigluMlp } from '../models/blocks';
import { CausalLM, integerOption } from '../models/causal-lm';
import { checkNamedWeights, saveDtype } from '../models/checkpoint';
import { generate, generateText, type GenerateOptions, type GenerateTextOptions, type GenerationConfig, type Prompt } from '../models/generate';
import { readTokenizer, type TextTokenizer } from '../models/tokenizer';
import { transpose } from '../models/layout';
import { pinned } from '../pinned';
import type { BackendName, Tensor } from '../types';
import { checkOptions } from '../validate';
import { readLlamaCheckpoint, writeLlamaCheckpoint } from './checkpoint';
import { biases, parseLlamaConfig, type LlamaConfig, type ResolvedLlamaConfig } from './config';
import { isIgnoredLlamaTensor, llamaShapes, randomLlamaWeights } from './weights';

/** One block's arrays in the blocks' layout ([in, out]), for namedWeights. */
interface Layer {
  block: PreNormBlock;
  ln1: RmsNorm; ln2: RmsNorm; mlp: SwigluMlp;
  wq: Float32Array; wk: Float32Array; wv: Float32Array; wo: Float32Array;
  bq: Float32Array | null; bk: Float32Array | null; bv: Float32Array | null; bo: Float32Array | null;
}

/**
 * A Llama-family model for inference. Build it with Llama.load (a Hugging Face folder; or
 * loadModel, which picks the class from model_type), Llama.random or Llama.fromWeights; it runs on
 * the backend that was active when it was built.
 * @example
 * const model = await Llama.load('./TinyLlama-1.1B');
 * const ids = model.generate([1, 450, 7483], { maxNewTokens: 20 });
 */
export class Llama {
  /** The checked hyperparameters, defaults filled in. */
  readonly config: Readonly<ResolvedLlamaConfig>;
  /** The backend this model runs on. */
  readonly backend: BackendName;
  /** Defaults for generate: Llama.load fills eosTokenId from generation_config.json or config.json. */
  readonly generationConfig: Readonly<GenerationConfig>;
  /** The folder's tokenizer (tokenizer.json), or null: see GPT.tokenizer. */
  readonly tokenizer: TextTokenizer | null;
  private readonly lm: CausalLM;
  private readonly layers: Layer[];
  private readonly finalNorm: RmsNorm;
  /** The untied lm_head in [hidden, vocab] layout, or null when tied to the embedding. */
  private readonly lmHead: Float32Array | null;

  private constructor(config: ResolvedLlamaConfig, weights: ReadonlyMap<string, Tensor>, eosTokenId: readonly number[] = [],
    tokenizer: TextTokenizer | null = null) {
    this.tokenizer = tokenizer;
    this.config = Object.freeze({ ...config, rope_scaling: config.rope_scaling && Object.freeze({ ...config.rope_scaling }) });
    this.generationConfig = Object.freeze({ eosTokenId: Object.freeze([...eosTokenId]) });
    const ops = current();
    this.backend = ops.name;
    const { vocab_size: V, hidden_size: E, intermediate_size: I, num_attention_heads: Hq, num_key_value_heads: Hkv, head_dim: D } = config;
    const eps = config.rms_norm_eps, bias = biases(config);
    const get = (name: string): Float32Array => (weights.get(name) as Tensor).data;
    const embed = get('model.embed_tokens.weight');
    this.finalNorm = new RmsNorm(ops, get('model.norm.weight'), eps);
    this.lmHead = config.tie_word_embeddings ? null : transpose(get('lm_head.weight'), V, E);
    // Tied: a transposed copy of the embedding makes the head a plain row-major matmul.
    const head = new LmHead(this.finalNorm, new Linear(ops, this.lmHead ?? transpose(embed, V, E), null, E, V));
    const rope = { theta: config.rope_theta, scaling: config.rope_scaling };
    this.layers = [];
    for (let i = 0; i < config.num_hidden_layers; i++) {
      const p = (name: string): Float32Array => get(`model.layers.${i}.${name}`);
      // The attention layer reads SharedArrayBuffer-backed weights (lib/pinned.ts): the transposes
      // are made there and the biases pinned once, so the layer keeps no second copy.
      const proj = (name: string, out: number, inF: number) => transpose(p(`self_attn.${name}_proj.weight`), out, inF, true);
      const projBias = (name: string, on: boolean) => (on ? pinned(p(`self_attn.${name}_proj.bias`)) : null);
      const wq = proj('q', Hq * D, E), wk = proj('k', Hkv * D, E), wv = proj('v', Hkv * D, E), wo = proj('o', E, Hq * D);
      const bq = projBias('q', bias.qkv), bk = projBias('k', bias.qkv), bv = projBias('v', bias.qkv), bo = projBias('o', bias.o);
      const t = (data: Float32Array, dims: number[]): Tensor => ({ data, dims });
      const attn = new MultiHeadAttention({
        numHeads: Hq, numKVHeads: Hkv, causal: true, rope, ...(config.sliding_window !== null ? { slidingWindow: config.sliding_window } : {}),
      }, {
        wq: t(wq, [E, Hq * D]), wk: t(wk, [E, Hkv * D]), wv: t(wv, [E, Hkv * D]), wo: t(wo, [Hq * D, E]),
        ...(bq && { bq }), ...(bk && { bk }), ...(bv && { bv }), ...(bo && { bo }),
      });
      const linear = (name: string, out: number, inF: number) =>
        new Linear(ops, transpose(p(`mlp.${name}_proj.weight`), out, inF), bias.mlp ? p(`mlp.${name}_proj.bias`) : null, inF, out);
      const mlp = new SwigluMlp(ops, linear('gate', I, E), linear('up', I, E), linear('down', E, I));
      const ln1 = new RmsNorm(ops, p('input_layernorm.weight'), eps), ln2 = new RmsNorm(ops, p('post_attention_layernorm.weight'), eps);
      this.layers.push({ block: new PreNormBlock(ops, ln1, attn, ln2, mlp), ln1, ln2, mlp, wq, wk, wv, wo, bq, bk, bv, bo });
    }
    this.lm = new CausalLM(ops, new Embedding(ops, embed, null, E), this.layers.map((l) => l.block), head, {
      vocab: V, maxPositions: config.max_position_embeddings, maxPositionsKey: 'max_position_embeddings', width: E, numKVHeads: Hkv, headDim: D,
    });
  }

  /**
   * Builds a model from Hugging Face-named tensors in HF's layout (linear weights [out, in]),
   * checking every shape against the config and every value for NaN/infinity. Linear weights
   * are transposed into copies; the embedding, norms and MLP biases are used in place.
   * @param config a Llama-family config.json (defaults filled as transformers does)
   * @param weights tensor name -> Tensor, e.g. 'model.layers.0.self_attn.q_proj.weight' -> [Hq*head_dim, hidden]
   */
  static fromWeights(config: LlamaConfig, weights: ReadonlyMap<string, Tensor> | Record<string, Tensor>): Llama {
    const checked = parseLlamaConfig(config);
    return new Llama(checked, checkNamedWeights(weights, llamaShapes(checked), (name) => isIgnoredLlamaTensor(name, checked), checked.model_type));
  }

  /**
   * A model with random weights (uniform, standard deviation opts.std, default 0.02), for demos,
   * benchmarks and tests.
   * @param seed integer seed; the same seed gives the same weights
   * @example const model = Llama.random({ vocab_size: 32000, hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 22,
   *   num_attention_heads: 32, num_key_value_heads: 4, max_position_embeddings: 2048 }, 1);
   */
  static random(config: LlamaConfig, seed = 0, opts?: { std?: number }): Llama {
    const checked = parseLlamaConfig(config);
    integerOption(seed, 'seed', Number.MIN_SAFE_INTEGER);
    const o = checkOptions(opts, 'opts', ['std']);
    const std = o.std ?? 0.02;
    if (typeof std !== 'number' || !(std >= 0) || !Number.isFinite(std)) throw rangeError('opts.std', 'a finite number >= 0', String(std));
    return new Llama(checked, randomLlamaWeights(checked, seed, std));
  }

  /**
   * Loads a Hugging Face Llama, Mistral or Qwen2 folder: config.json and model.safetensors (or the
   * shards model.safetensors.index.json lists), F32, F16, BF16 or F64 tensors. Every shape is
   * checked against config.json before any tensor data is read; another model_type is refused by
   * name. The eos_token_id of generation_config.json, else of config.json, becomes
   * generationConfig.eosTokenId; a tokenizer.json becomes the tokenizer.
   */
  static async load(dir: string): Promise<Llama> {
    if (typeof dir !== 'string' || dir.length === 0) throw typeError('dir', 'a non-empty folder path', dir);
    const { config, weights, eosTokenId } = await readLlamaCheckpoint(dir);
    return new Llama(config, weights, eosTokenId, await readTokenizer(dir));
  }

  /**
   * The weights under their Hugging Face names and layout, in checkpoint order. Linear weights
   * (and a tied head's absence) come back as transposed copies; the rest are the model's own
   * arrays: do not modify them.
   */
  namedWeights(): Map<string, Tensor> {
    const { hidden_size: E, intermediate_size: I, num_attention_heads: Hq, num_key_value_heads: Hkv, head_dim: D, vocab_size: V } = this.config;
    const out = new Map<string, Tensor>();
    for (const [name, dims] of llamaShapes(this.config)) {
      const match = /^model\.layers\.(\d+)\.(.+)$/.exec(name);
      let data: Float32Array;
      if (!match) {
        data = name === 'model.embed_tokens.weight' ? this.lm.embedding.tokens
          : name === 'model.norm.weight' ? this.finalNorm.weight : transpose(this.lmHead!, E, V);
      } else {
        const l = this.layers[Number(match[1])];
        const fields: Record<string, () => Float32Array> = {
          'input_layernorm.weight': () => l.ln1.weight, 'post_attention_layernorm.weight': () => l.ln2.weight,
          'self_attn.q_proj.weight': () => transpose(l.wq, E, Hq * D), 'self_attn.k_proj.weight': () => transpose(l.wk, E, Hkv * D),
          'self_attn.v_proj.weight': () => transpose(l.wv, E, Hkv * D), 'self_attn.o_proj.weight': () => transpose(l.wo, Hq * D, E),
          'self_attn.q_proj.bias': () => l.bq!, 'self_attn.k_proj.bias': () => l.bk!, 'self_attn.v_proj.bias': () => l.bv!,
          'self_attn.o_proj.bias': () => l.bo!,
          'mlp.gate_proj.weight': () => transpose(l.mlp.gate.weight, E, I), 'mlp.up_proj.weight': () => transpose(l.mlp.up.weight, E, I),
          'mlp.down_proj.weight': () => transpose(l.mlp.down.weight, I, E),
          'mlp.gate_proj.bias': () => l.mlp.gate.bias!, 'mlp.up_proj.bias': () => l.mlp.up.bias!, 'mlp.down_proj.bias': () => l.mlp.down.bias!,
        };
        data = fields[match[2]]();
      }
      out.set(name, { data, dims });
    }
    return out;
  }

  /**
   * Writes config.json (model_type, every resolved hyperparameter, torch_dtype, eos_token_id) and
   * model.safetensors (HF names and layout) into `dir`, creating it: a folder transformers loads.
   * @param opts dtype: 'F32' (default), 'F16' or 'BF16' (rounded to nearest even)
   */
  async save(dir: string, opts?: { dtype?: SaveDtype }): Promise<void> {
    if (typeof dir !== 'string' || dir.length === 0) throw typeError('dir', 'a non-empty folder path', dir);
    const o = checkOptions(opts, 'opts', ['dtype']);
    await writeLlamaCheckpoint(dir, this.config, this.namedWeights(), saveDtype(o.dtype), this.generationConfig.eosTokenId);
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
   * Starts an incremental decode: one KVCache per layer (num_key_value_heads x head_dim per
   * position), room for `maxSeqLen` tokens (default max_position_embeddings, which for a real model
   * is a large allocation: pass what you need). Call dispose() when done.
   */
  decoder(maxSeqLen = this.config.max_position_embeddings): GPTDecoder {
    return this.lm.decoder(maxSeqLen);
  }

  /**
   * Generates up to `maxNewTokens` tokens after the prompt, one KV-cached step per token, with the
   * options of GPT.generate (GenerateOptions); several prompts run together in one batch, as there.
   * @returns the new tokens only (an array of them for a batch), the stopping token included
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
