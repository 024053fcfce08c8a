// GPT-2 inference (the seeds' baby transformer, grown up). One block, pre-LayerNorm:
//   x = x + c_proj(attention(ln_1(x)))                     attention: causal, n_head heads
//   x = x + mlp.c_proj(gelu_tanh(mlp.c_fc(ln_2(x))))
// then logits = ln_f(x) @ wte^T (the LM head is tied to the token embedding).
// Shapes: tokens (B, S); x (B*S, E); logits (B, S, V). Conv1D weights are (in, out): y = x W + b.
// The fused c_attn (E, 3E) splits by columns into wq | wk | wv for MultiHeadAttention, and c_proj
// is its wo; GPT.save fuses them back. GPT-2 is one composition of the shared blocks of
// lib/models/blocks.ts (Embedding, PreNormBlock of LayerNorm + attention + GeluMlp, LmHead), all on
// the backend that was active when the model was built.
import { current } from '../backend';
import { rangeError, typeError } from '../errors';
import { CausalLM, integerOption } from '../models/causal-lm';
import { checkNamedWeights, saveDtype } from '../models/checkpoint';
import type { WeightDtype } from '../models/decoder-spec';
import {
  generate, generateAsync, generateText, stream, type GenerateAsyncOptions, type GenerateOptions, type GenerateTextOptions, type GenerationConfig, type Prompt,
} from '../models/generate';
import { readTokenizer, type TextTokenizer } from '../models/tokenizer';
import type { WeightLayout } from '../models/weight-layout';
import type { BackendName, Tensor } from '../types';
import { checkOptions, dtypeOption } from '../validate';
import { readCheckpoint, writeCheckpoint } from './checkpoint';
import { parseConfig, type GPTConfig } from './config';
import type { GPTDecoder } from './decoder';
import type { SaveDtype } from './safetensors';
import { expectedShapes, gptLayout, isIgnoredTensor, randomWeights } from './weights';

export interface RandomOptions {
  /** Standard deviation of the weights (GPT-2: 0.02). Larger values give sharper attention. */
  std?: number;
  /** The precision the model keeps its weight matrices in (rounded to nearest even). Default 'F32'. */
  dtype?: WeightDtype;
  /** The element type of the model's KV caches (KVCacheConfig.dtype). Default 'F32'. */
  kvDtype?: WeightDtype;
}

export interface LoadOptions {
  /**
   * The precision the model keeps its weight matrices in. Default: the file's own (F16 and BF16
   * files stay 16-bit, converted to float32 in the kernels' registers; anything else is F32).
   */
  dtype?: WeightDtype;
  /**
   * The element type of the model's KV caches: 'F32' (default), or 'F16' / 'BF16', which halve the
   * bytes long-context decoding reads (KVCacheConfig.dtype; the README gives the measured effect
   * on logits).
   */
  kvDtype?: WeightDtype;
}

export interface SaveOptions {
  /** How model.safetensors stores the weights. Default 'F32'. */
  dtype?: SaveDtype;
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
  /** The precision of the weight matrices (norm gains and biases are float32). */
  readonly dtype: WeightDtype;
  /** The element type of the KV caches the model's decoding makes (opts.kvDtype). */
  readonly kvDtype: WeightDtype;

  /**
   * Bytes of the weights this model holds: every matrix in `dtype`, norm weights and biases in
   * float32, each tensor once (the backends compute on these arrays in place; a tied head is the
   * embedding itself).
   */
  get weightBytes(): number {
    return this.layout.bytes;
  }
  private readonly lm: CausalLM;
  private readonly layout: WeightLayout;

  private constructor(config: GPTConfig, model: ReturnType<typeof gptLayout>, kvDtype: WeightDtype,
    eosTokenId: readonly number[] = [], tokenizer: TextTokenizer | null = null) {
    this.config = Object.freeze({ ...config });
    this.tokenizer = tokenizer;
    this.generationConfig = Object.freeze({ eosTokenId: Object.freeze([...eosTokenId]) });
    const ops = current();
    this.backend = ops.name;
    this.dtype = model.spec.dtype;
    this.kvDtype = kvDtype;
    this.layout = model.layout;
    this.lm = new CausalLM(ops, model.spec, { vocab: config.vocab_size, maxPositions: config.n_positions, maxPositionsKey: 'n_positions' },
      kvDtype);
  }

  /** A model of `config` with `weights` (checked) placed in arrays of `dtype`. */
  private static build(config: GPTConfig, weights: Iterable<[string, Tensor]>, dtype: WeightDtype, kvDtype: WeightDtype): GPT {
    const model = gptLayout(config, dtype);
    for (const [name, tensor] of weights) model.layout.put(name, tensor);
    return new GPT(config, model, kvDtype);
  }

  /**
   * Builds a model from GPT-2-named tensors (no `transformer.` prefix), checking every shape
   * against the config and every value for NaN/infinity. They are copied into the model's own
   * arrays ([out, in] matrices in opts.dtype, default 'F32'); the given ones are not kept.
   * @param config the hyperparameters (as in config.json)
   * @param weights tensor name -> Tensor, e.g. 'h.0.attn.c_attn.weight' -> [n_embd, 3*n_embd]
   */
  static fromWeights(config: GPTConfig, weights: ReadonlyMap<string, Tensor> | Record<string, Tensor>,
    opts?: { dtype?: WeightDtype; kvDtype?: WeightDtype }): GPT {
    const checked = parseConfig(config);
    const o = checkOptions(opts, 'opts', ['dtype', 'kvDtype']);
    const dtype = dtypeOption(o.dtype, 'opts.dtype') ?? 'F32', kvDtype = dtypeOption(o.kvDtype, 'opts.kvDtype') ?? 'F32';
    return GPT.build(checked, checkNamedWeights(weights, expectedShapes(checked), isIgnoredTensor, 'GPT-2'), dtype, kvDtype);
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
    const o = checkOptions(opts, 'opts', ['std', 'dtype', 'kvDtype']);
    const std = o.std ?? 0.02;
    if (typeof std !== 'number' || !(std >= 0) || !Number.isFinite(std)) throw rangeError('opts.std', 'a finite number >= 0', String(std));
    const kvDtype = dtypeOption(o.kvDtype, 'opts.kvDtype') ?? 'F32';
    return GPT.build(checked, randomWeights(checked, seed, std), dtypeOption(o.dtype, 'opts.dtype') ?? 'F32', kvDtype);
  }

  /**
   * Loads a Hugging Face style GPT-2 folder: config.json and model.safetensors (F32, F16, BF16 or
   * F64 tensors, names with or without a `transformer.` prefix). Every shape is checked against
   * config.json before any tensor data is read; a config.json whose model_type is not 'gpt2' is
   * refused by name. The eos_token_id of generation_config.json, else of config.json, becomes
   * generationConfig.eosTokenId; a tokenizer.json (and tokenizer_config.json) becomes the tokenizer.
   * Each tensor is read straight into the model's arrays, in the file's precision unless
   * opts.dtype says otherwise (LoadOptions).
   * @param dir the folder
   */
  static async load(dir: string, opts?: LoadOptions): Promise<GPT> {
    if (typeof dir !== 'string' || dir.length === 0) throw typeError('dir', 'a non-empty folder path', dir);
    const o = checkOptions(opts, 'opts', ['dtype', 'kvDtype']);
    const kvDtype = dtypeOption(o.kvDtype, 'opts.kvDtype') ?? 'F32';
    const { config, eosTokenId, ...model } = await readCheckpoint(dir, dtypeOption(o.dtype, 'opts.dtype'));
    return new GPT(config, model, kvDtype, eosTokenId, await readTokenizer(dir));
  }

  /**
   * The weights under their GPT-2 names and layout, as float32, in checkpoint order: the weight
   * matrices are copies (transposed back to Conv1D's [in, out]), the norm gains and biases the
   * model's own arrays (do not modify them).
   */
  namedWeights(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const name of expectedShapes(this.config).keys()) out.set(name, this.layout.get(name));
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
    const probabilities = this.lm.attentionProbabilities(tokens, layer);
    return { data: probabilities.slice(head * S * S, (head + 1) * S * S), dims: [S, S] };
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

  /**
   * generate off the event loop: each step (the whole forward pass of the batch) runs on the libuv
   * pool with the native backend, so a server keeps serving while it generates. Same options and
   * result as generate, plus opts.signal: aborting stops before the next step and rejects with the
   * signal's reason; the model stays usable. Any number of calls may run at once on one model.
   * @example const ids = await model.generateAsync([464, 3290], { maxNewTokens: 20, signal: AbortSignal.timeout(5000) });
   */
  generateAsync(prompt: Prompt, opts: GenerateAsyncOptions): Promise<Int32Array>;
  generateAsync(prompts: readonly Prompt[], opts: GenerateAsyncOptions): Promise<Int32Array[]>;
  generateAsync(input: Prompt | readonly Prompt[], opts: GenerateAsyncOptions): Promise<Int32Array | Int32Array[]> {
    return generateAsync(this.lm, this.generationConfig, input, opts);
  }

  /**
   * Streams one prompt's new tokens as they are generated, each step on the libuv pool (as
   * generateAsync, opts.signal included): token ids for token ids, text pieces for a string prompt
   * (with the model's tokenizer). Breaking out of the loop frees the caches.
   * @example for await (const piece of model.stream('Once upon a time', { maxNewTokens: 40 })) process.stdout.write(piece);
   */
  stream(prompt: Prompt, opts: GenerateAsyncOptions): AsyncGenerator<number, void, undefined>;
  stream(prompt: string, opts: GenerateAsyncOptions): AsyncGenerator<string, void, undefined>;
  stream(prompt: Prompt | string, opts: GenerateAsyncOptions): AsyncGenerator<number | string, void, undefined> {
    return stream(this.lm, this.generationConfig, this.tokenizer, prompt, opts);
  }
}
