// The Llama family (Llama 2/3, Mistral, Qwen2, SmolLM, TinyLlama): one composition of the shared
// blocks of lib/models/blocks.ts. One block, pre-RMSNorm:
//   x = x + o_proj(attention(rope(q_proj(h)), rope(k_proj(h)), v_proj(h)))    h = input_layernorm(x)
//   x = x + down_proj(silu(gate_proj(h)) * up_proj(h))                          h = post_attention_layernorm(x)
// then logits = norm(x) @ lm_head^T (or embed_tokens^T when tied). Attention is grouped-query
// (num_key_value_heads), rotary (rope_theta, rope_scaling) and, for Mistral, windowed; the
// rotary embedding and the window live in the attention layer (lib/mha.ts), so the KV cache holds
// rotated keys. Shapes: tokens (B, S); x (B*S, hidden); logits (B, S, vocab).
// Checkpoints store linear weights [out, in] (nn.Linear), the layout the decoder reads: each is
// read into the model's arrays as it is (q/k/v and gate/up stacked), in the file's precision.
import { current } from '../backend';
import { typeError, rangeError } from '../errors';
import type { SaveDtype } from '../gpt/safetensors';
import type { GPTDecoder } from '../gpt/decoder';
import type { LoadOptions } from '../gpt/model';
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
import { readLlamaCheckpoint, writeLlamaCheckpoint } from './checkpoint';
import { parseLlamaConfig, type LlamaConfig, type ResolvedLlamaConfig } from './config';
import { isIgnoredLlamaTensor, llamaLayout, llamaShapes, randomLlamaWeights } from './weights';

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

  private constructor(config: ResolvedLlamaConfig, model: ReturnType<typeof llamaLayout>, kvDtype: WeightDtype,
    eosTokenId: readonly number[] = [], tokenizer: TextTokenizer | null = null) {
    this.tokenizer = tokenizer;
    this.config = Object.freeze({ ...config, rope_scaling: config.rope_scaling && Object.freeze({ ...config.rope_scaling }) });
    this.generationConfig = Object.freeze({ eosTokenId: Object.freeze([...eosTokenId]) });
    const ops = current();
    this.backend = ops.name;
    this.dtype = model.spec.dtype;
    this.kvDtype = kvDtype;
    this.layout = model.layout;
    this.lm = new CausalLM(ops, model.spec, {
      vocab: config.vocab_size, maxPositions: config.max_position_embeddings, maxPositionsKey: 'max_position_embeddings',
    }, kvDtype);
  }

  /** A model of `config` with `weights` (checked) placed in arrays of `dtype`. */
  private static build(config: ResolvedLlamaConfig, weights: Iterable<[string, Tensor]>, dtype: WeightDtype, kvDtype: WeightDtype): Llama {
    const model = llamaLayout(config, dtype);
    for (const [name, tensor] of weights) model.layout.put(name, tensor);
    return new Llama(config, model, kvDtype);
  }

  /**
   * Builds a model from Hugging Face-named tensors in HF's layout (linear weights [out, in]),
   * checking every shape against the config and every value for NaN/infinity. They are copied
   * into the model's own arrays (matrices in opts.dtype, default 'F32'); the given ones are not kept.
   * @param config a Llama-family config.json (defaults filled as transformers does)
   * @param weights tensor name -> Tensor, e.g. 'model.layers.0.self_attn.q_proj.weight' -> [Hq*head_dim, hidden]
   */
  static fromWeights(config: LlamaConfig, weights: ReadonlyMap<string, Tensor> | Record<string, Tensor>,
    opts?: { dtype?: WeightDtype; kvDtype?: WeightDtype }): Llama {
    const checked = parseLlamaConfig(config);
    const o = checkOptions(opts, 'opts', ['dtype', 'kvDtype']);
    const dtype = dtypeOption(o.dtype, 'opts.dtype') ?? 'F32', kvDtype = dtypeOption(o.kvDtype, 'opts.kvDtype') ?? 'F32';
    const named = checkNamedWeights(weights, llamaShapes(checked), (name) => isIgnoredLlamaTensor(name, checked), checked.model_type);
    return Llama.build(checked, named, dtype, kvDtype);
  }

  /**
   * A model with random weights (uniform, standard deviation opts.std, default 0.02), for demos,
   * benchmarks and tests.
   * @param seed integer seed; the same seed gives the same weights
   * @example const model = Llama.random({ vocab_size: 32000, hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 22,
   *   num_attention_heads: 32, num_key_value_heads: 4, max_position_embeddings: 2048 }, 1);
   */
  static random(config: LlamaConfig, seed = 0, opts?: { std?: number; dtype?: WeightDtype; kvDtype?: WeightDtype }): Llama {
    const checked = parseLlamaConfig(config);
    integerOption(seed, 'seed', Number.MIN_SAFE_INTEGER);
    const o = checkOptions(opts, 'opts', ['std', 'dtype', 'kvDtype']);
    const std = o.std ?? 0.02;
    if (typeof std !== 'number' || !(std >= 0) || !Number.isFinite(std)) throw rangeError('opts.std', 'a finite number >= 0', String(std));
    const kvDtype = dtypeOption(o.kvDtype, 'opts.kvDtype') ?? 'F32';
    return Llama.build(checked, randomLlamaWeights(checked, seed, std), dtypeOption(o.dtype, 'opts.dtype') ?? 'F32', kvDtype);
  }

  /**
   * Loads a Hugging Face Llama, Mistral or Qwen2 folder: config.json and model.safetensors (or the
   * shards model.safetensors.index.json lists), F32, F16, BF16 or F64 tensors. Every shape is
   * checked against config.json before any tensor data is read; another model_type is refused by
   * name. The eos_token_id of generation_config.json, else of config.json, becomes
   * generationConfig.eosTokenId; a tokenizer.json becomes the tokenizer.
   */
  static async load(dir: string, opts?: LoadOptions): Promise<Llama> {
    if (typeof dir !== 'string' || dir.length === 0) throw typeError('dir', 'a non-empty folder path', dir);
    const o = checkOptions(opts, 'opts', ['dtype', 'kvDtype']);
    const kvDtype = dtypeOption(o.kvDtype, 'opts.kvDtype') ?? 'F32';
    const { config, eosTokenId, ...model } = await readLlamaCheckpoint(dir, dtypeOption(o.dtype, 'opts.dtype'));
    return new Llama(config, model, kvDtype, eosTokenId, await readTokenizer(dir));
  }

  /**
   * The weights under their Hugging Face names and layout, as float32, in checkpoint order (a tied
   * head has none): the weight matrices are copies, the norm gains and biases the model's own arrays
   * (do not modify them).
   */
  namedWeights(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const name of llamaShapes(this.config).keys()) out.set(name, this.layout.get(name));
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
