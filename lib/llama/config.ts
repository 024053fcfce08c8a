// The Llama family's hyperparameters as Hugging Face's config.json spells them (LlamaConfig,
// MistralConfig, Qwen2Config: one architecture with different defaults), and the checks that keep
// a config meaning another forward pass (another activation, rope scaling or window rule) from
// loading as if it were this one.
import { rangeError, typeError } from '../errors';
import { checkModelType } from '../models/model-types';
import type { SaveDtype } from '../gpt/safetensors';

/** Llama 3's rope_scaling (`rope_type: "llama3"`; older files spell the key `type`). */
export interface LlamaRopeScaling {
  rope_type: 'llama3';
  factor: number;
  low_freq_factor: number;
  high_freq_factor: number;
  original_max_position_embeddings: number;
}

/** A Llama-family config.json (the keys the model reads; others are ignored). */
export interface LlamaConfig {
  /** 'llama' (default), 'mistral' or 'qwen2'. */
  model_type?: 'llama' | 'mistral' | 'qwen2';
  vocab_size: number;
  hidden_size: number;
  /** The MLP width. */
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  /** Default num_attention_heads; a divisor of it (grouped-query attention). */
  num_key_value_heads?: number;
  /** Default hidden_size / num_attention_heads; may differ from it. */
  head_dim?: number;
  /** Default 1e-6. */
  rms_norm_eps?: number;
  /** Default 10000. */
  rope_theta?: number;
  rope_scaling?: LlamaRopeScaling | null;
  /** The longest sequence the model runs. */
  max_position_embeddings: number;
  /** The LM head is the token embedding (no lm_head.weight). Default false. */
  tie_word_embeddings?: boolean;
  /** Llama: biases on q, k, v and o. Default false. (Qwen2 always has q/k/v biases and no o bias.) */
  attention_bias?: boolean;
  /** Llama: biases on gate, up and down. Default false. */
  mlp_bias?: boolean;
  /** Mistral: a query sees at most this many keys, itself included (default 4096; null: no window). */
  sliding_window?: number | null;
}

/** A checked config, every default filled in. */
export type ResolvedLlamaConfig = Required<LlamaConfig>;

/** The widest model accepted, a guard against a config whose sizes would exhaust memory. */
const MAX_SIZE = 2 ** 31 - 1;

function positiveInteger(raw: Record<string, unknown>, key: string, where: string, fallback?: number): number {
  const value = raw[key] ?? fallback;
  if (typeof value !== 'number') throw typeError(`${where}.${key}`, 'a positive integer', value);
  if (!Number.isInteger(value) || value < 1 || value > MAX_SIZE) {
    throw rangeError(`${where}.${key}`, `a positive integer at most ${MAX_SIZE}`, String(value));
  }
  return value;
}

function positiveNumber(raw: Record<string, unknown>, key: string, where: string, fallback?: number, min = 0): number {
  const value = raw[key] ?? fallback;
  if (typeof value !== 'number') throw typeError(`${where}.${key}`, `a finite number > ${min}`, value);
  if (!Number.isFinite(value) || value <= min) throw rangeError(`${where}.${key}`, `a finite number > ${min}`, String(value));
  return value;
}

function flag(raw: Record<string, unknown>, key: string, where: string): boolean {
  const value = raw[key] ?? false;
  if (typeof value !== 'boolean') throw typeError(`${where}.${key}`, 'a boolean', value);
  return value;
}

function ropeScaling(value: unknown, where: string): LlamaRopeScaling | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) throw typeError(where, "null or a rope_scaling object with rope_type 'llama3'", value);
  const raw = value as Record<string, unknown>;
  const type = raw.rope_type ?? raw.type;
  if (type !== 'llama3') throw rangeError(`${where}.rope_type`, "'llama3' (the only rope scaling supported) or a null rope_scaling", JSON.stringify(type));
  const low = positiveNumber(raw, 'low_freq_factor', where);
  return {
    rope_type: 'llama3',
    factor: positiveNumber(raw, 'factor', where),
    low_freq_factor: low,
    high_freq_factor: positiveNumber(raw, 'high_freq_factor', where, undefined, low),
    original_max_position_embeddings: positiveInteger(raw, 'original_max_position_embeddings', where),
  };
}

/**
 * Checks a config (the parsed config.json, or the argument of Llama.random) and fills in the
 * defaults of its model_type.
 * @param where how to name it in errors, e.g. '/m/config.json'
 */
export function parseLlamaConfig(value: unknown, where = 'config'): ResolvedLlamaConfig {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw typeError(where, 'an object', value);
  const raw = value as Record<string, unknown>;
  const type = raw.model_type === undefined ? 'llama' : checkModelType(raw.model_type, `${where}.model_type`, 'llama');
  const hidden = positiveInteger(raw, 'hidden_size', where);
  const heads = positiveInteger(raw, 'num_attention_heads', where);
  const kvHeads = positiveInteger(raw, 'num_key_value_heads', where, heads);
  if (heads % kvHeads !== 0) throw rangeError(`${where}.num_key_value_heads`, `a divisor of num_attention_heads (${heads})`, String(kvHeads));
  if (raw.head_dim === undefined || raw.head_dim === null) {
    if (hidden % heads !== 0) throw rangeError(`${where}.num_attention_heads`, `a divisor of hidden_size (${hidden}) when there is no head_dim`, String(heads));
  }
  const headDim = positiveInteger(raw, 'head_dim', where, hidden / heads);
  const act = raw.hidden_act;
  if (act !== undefined && act !== 'silu') throw rangeError(`${where}.hidden_act`, "'silu' (the SwiGLU MLP) or no value", JSON.stringify(act));
  const attentionBias = flag(raw, 'attention_bias', where), mlpBias = flag(raw, 'mlp_bias', where);
  // Mistral and Qwen2 have no such switches: a true one would mean weights their code never reads.
  if (type !== 'llama') {
    for (const [key, on] of [['attention_bias', attentionBias], ['mlp_bias', mlpBias]] as const) {
      if (on) throw rangeError(`${where}.${key}`, `false or no value (a ${type} model has fixed biases)`, 'true');
    }
  }
  let slidingWindow: number | null = null;
  if (type === 'mistral') {
    slidingWindow = raw.sliding_window === null ? null : positiveInteger(raw, 'sliding_window', where, 4096);
  } else if (type === 'qwen2' && raw.use_sliding_window === true) {
    // Qwen2 windows only the layers from max_window_layers on, a rule this loader does not run.
    throw rangeError(`${where}.use_sliding_window`, 'false or no value (per-layer windows are not supported)', 'true');
  }
  const tie = raw.tie_word_embeddings ?? false;
  if (typeof tie !== 'boolean') throw typeError(`${where}.tie_word_embeddings`, 'a boolean', tie);
  const eps = raw.rms_norm_eps ?? 1e-6;
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0) throw rangeError(`${where}.rms_norm_eps`, 'a finite number >= 0', String(eps));
  return {
    model_type: type as ResolvedLlamaConfig['model_type'],
    vocab_size: positiveInteger(raw, 'vocab_size', where),
    hidden_size: hidden,
    intermediate_size: positiveInteger(raw, 'intermediate_size', where),
    num_hidden_layers: positiveInteger(raw, 'num_hidden_layers', where),
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    head_dim: headDim,
    rms_norm_eps: eps,
    rope_theta: positiveNumber(raw, 'rope_theta', where, 10000),
    rope_scaling: ropeScaling(raw.rope_scaling, `${where}.rope_scaling`),
    max_position_embeddings: positiveInteger(raw, 'max_position_embeddings', where),
    tie_word_embeddings: tie,
    attention_bias: attentionBias,
    mlp_bias: mlpBias,
    sliding_window: slidingWindow,
  };
}

/** Which projections carry biases: Llama by its switches, Qwen2 on q/k/v always, Mistral none. */
export function biases(config: ResolvedLlamaConfig): { qkv: boolean; o: boolean; mlp: boolean } {
  if (config.model_type === 'qwen2') return { qkv: true, o: false, mlp: false };
  return { qkv: config.attention_bias, o: config.attention_bias, mlp: config.mlp_bias };
}

const ARCHITECTURES = { llama: 'LlamaForCausalLM', mistral: 'MistralForCausalLM', qwen2: 'Qwen2ForCausalLM' } as const;
const TORCH_DTYPES: Record<SaveDtype, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

/** The config.json a saved model carries: enough for transformers' *ForCausalLM too. */
export function llamaConfigJson(config: ResolvedLlamaConfig, eosTokenId: readonly number[], dtype: SaveDtype): Record<string, unknown> {
  const { model_type: type, sliding_window: window, ...rest } = config;
  return {
    architectures: [ARCHITECTURES[type]],
    model_type: type,
    hidden_act: 'silu',
    ...rest,
    ...(type === 'mistral' ? { sliding_window: window } : {}),
    ...(type === 'qwen2' ? { use_sliding_window: false } : {}),
    torch_dtype: TORCH_DTYPES[dtype],
    ...(eosTokenId.length > 0 ? { eos_token_id: eosTokenId.length === 1 ? eosTokenId[0] : [...eosTokenId] } : {}),
  };
}
