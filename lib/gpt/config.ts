// GPT-2 hyperparameters as Hugging Face's config.json spells them, and the checks that keep a
// config that means a different model (another activation, a different MLP width, unscaled
// attention, cross-attention) from loading as if it were GPT-2.
import { rangeError, typeError } from '../errors';
import { checkModelType } from '../models/model-types';

/** The GPT-2 hyperparameters the model needs (names as in Hugging Face's config.json). */
export interface GPTConfig {
  /** Number of token embeddings (rows of wte). */
  vocab_size: number;
  /** Longest sequence: rows of wpe. */
  n_positions: number;
  /** Model width. */
  n_embd: number;
  n_layer: number;
  /** Attention heads; must divide n_embd. */
  n_head: number;
  /** LayerNorm epsilon (GPT-2: 1e-5). */
  layer_norm_epsilon: number;
}

/** The widest model accepted, a guard against a config whose sizes would exhaust memory. */
const MAX_SIZE = 2 ** 31 - 1;

function positiveInteger(config: Record<string, unknown>, key: string, where: string): number {
  const value = config[key];
  if (typeof value !== 'number') throw typeError(`${where}.${key}`, 'a positive integer', value);
  if (!Number.isInteger(value) || value < 1 || value > MAX_SIZE) {
    throw rangeError(`${where}.${key}`, `a positive integer at most ${MAX_SIZE}`, String(value));
  }
  return value;
}

/**
 * Checks a config object (the parsed config.json, or the argument of GPT.random) and returns the
 * six fields the model uses. Keys that only matter for training (dropout, initializer range,
 * ...) are ignored; keys that would change the forward pass must hold GPT-2's values.
 * @param value the parsed JSON
 * @param where how to name it in errors, e.g. 'config.json'
 */
export function parseConfig(value: unknown, where = 'config'): GPTConfig {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw typeError(where, 'an object', value);
  const raw = value as Record<string, unknown>;
  // Refused by name before the hyperparameters are read: another architecture's folder.
  if (raw.model_type !== undefined) checkModelType(raw.model_type, `${where}.model_type`, 'gpt2');
  const config: GPTConfig = {
    vocab_size: positiveInteger(raw, 'vocab_size', where),
    n_positions: positiveInteger(raw, 'n_positions', where),
    n_embd: positiveInteger(raw, 'n_embd', where),
    n_layer: positiveInteger(raw, 'n_layer', where),
    n_head: positiveInteger(raw, 'n_head', where),
    layer_norm_epsilon: 1e-5,
  };
  const eps = raw.layer_norm_epsilon;
  if (eps !== undefined) {
    if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0) {
      throw rangeError(`${where}.layer_norm_epsilon`, 'a finite number >= 0', String(eps));
    }
    config.layer_norm_epsilon = eps;
  }
  if (config.n_embd % config.n_head !== 0) {
    throw rangeError(`${where}.n_head`, `a divisor of n_embd (${config.n_embd})`, String(config.n_head));
  }
  const inner = raw.n_inner;
  if (inner !== undefined && inner !== null && inner !== 4 * config.n_embd) {
    throw rangeError(`${where}.n_inner`, `null or 4 * n_embd (${4 * config.n_embd}), the GPT-2 MLP width`, JSON.stringify(inner));
  }
  const activation = raw.activation_function;
  if (activation !== undefined && activation !== 'gelu_new') {
    throw rangeError(`${where}.activation_function`, "'gelu_new' (GELU, tanh approximation) or no value", JSON.stringify(activation));
  }
  // Each of these switches selects a forward pass other than GPT-2's; reject rather than ignore.
  const mustBe: [string, unknown][] = [
    ['scale_attn_weights', true],
    ['scale_attn_by_inverse_layer_idx', false],
    ['add_cross_attention', false],
  ];
  for (const [key, expected] of mustBe) {
    if (raw[key] !== undefined && raw[key] !== expected) {
      throw rangeError(`${where}.${key}`, `${String(expected)} (GPT-2) or no value`, JSON.stringify(raw[key]));
    }
  }
  return config;
}

/**
 * Checks end-of-sequence token ids: one id, a list of ids, or null for none.
 * @param name how to name the value in errors, e.g. 'opts.eosTokenId'
 * @returns the ids (empty for null)
 */
export function parseTokenIds(value: unknown, vocab: number, name: string): number[] {
  if (value === null) return [];
  const ids = typeof value === 'number' ? [value] : value;
  if (!Array.isArray(ids) || !ids.every((t) => typeof t === 'number')) throw typeError(name, 'a token id, an array of token ids or null', value);
  for (const t of ids) {
    if (!Number.isInteger(t) || t < 0 || t >= vocab) throw rangeError(name, `token ids in [0, ${vocab})`, String(t));
  }
  return ids;
}

/**
 * The config.json a saved model carries: enough for Hugging Face's GPT2LMHeadModel too.
 * @param eosTokenId written as eos_token_id (a number when there is one) unless empty
 */
export function configJson(config: GPTConfig, eosTokenId: readonly number[]): Record<string, unknown> {
  return {
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    vocab_size: config.vocab_size,
    n_positions: config.n_positions,
    n_ctx: config.n_positions,
    n_embd: config.n_embd,
    n_layer: config.n_layer,
    n_head: config.n_head,
    n_inner: null,
    activation_function: 'gelu_new',
    layer_norm_epsilon: config.layer_norm_epsilon,
    ...(eosTokenId.length > 0 ? { eos_token_id: eosTokenId.length === 1 ? eosTokenId[0] : [...eosTokenId] } : {}),
  };
}
