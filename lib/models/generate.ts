// Generation for every architecture: GenerateOptions checked once, then Hugging Face's per-step
// logits pipeline (lib/gpt/sampling.ts) over a CausalLM's incremental decoder, one KV-cached step
// per token.
import { rangeError, typeError } from '../errors';
import { applyRepetitionPenalty, argmax, sample, type Logits, type SamplerOptions } from '../gpt/sampling';
import { checkTokens } from '../gpt/decoder';
import { parseTokenIds } from '../gpt/config';
import { seededRandom } from '../random';
import { checkOptions } from '../validate';
import { integerOption, type CausalLM } from './causal-lm';

/**
 * How generate picks tokens. The logits of each step go through Hugging Face's pipeline in its
 * order: repetitionPenalty, then temperature, topK, topP, minP; greedy decoding (temperature 0)
 * applies only the repetition penalty before the argmax.
 */
export interface GenerateOptions {
  /** The most tokens to generate; fewer come back when an eosTokenId is generated or onToken returns false. */
  maxNewTokens: number;
  /** 0 or absent: greedy argmax (ties to the lowest token id). > 0: sample from softmax(logits / temperature). */
  temperature?: number;
  /** Sample only among the topK most likely tokens (ties at the cut to the lower id). Default: all. */
  topK?: number;
  /**
   * Nucleus sampling, in (0, 1]: only the most likely tokens whose probabilities, taken from the
   * largest down, reach topP (the token that crosses it is kept). Default 1: all.
   */
  topP?: number;
  /** In [0, 1): only tokens at least minP times as likely as the most likely one. Default 0: all. */
  minP?: number;
  /**
   * > 0: each token already in the prompt or the output has its logit divided by this when
   * positive and multiplied by it otherwise (so > 1 discourages repeats). Default 1: off.
   */
  repetitionPenalty?: number;
  /**
   * Stop right after generating this token (or any of these); it is the last token returned.
   * Default: the model's generationConfig.eosTokenId (read from the folder by load). null: never stop early.
   */
  eosTokenId?: number | readonly number[] | null;
  /**
   * Called synchronously with each new token and its index in the output, the stopping token
   * included; returning false ends generation after that token.
   */
  onToken?: (token: number, index: number) => boolean | void;
  /** Seed of the sampler; the same seed gives the same tokens. Default: a random seed. */
  seed?: number;
}

/** Generation defaults a model carries. */
export interface GenerationConfig {
  /** Token ids generate stops at by default; empty: none. */
  eosTokenId: readonly number[];
}

const OPTION_KEYS = ['maxNewTokens', 'temperature', 'topK', 'topP', 'minP', 'repetitionPenalty', 'eosTokenId', 'onToken', 'seed'];

function numberOption(value: unknown, name: string, expected: string, fallback: number, ok: (v: number) => boolean): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') throw typeError(name, expected, value);
  if (!ok(value)) throw rangeError(name, expected, String(value));
  return value;
}

/**
 * Generates up to opts.maxNewTokens tokens after the prompt (see GPT.generate, Llama.generate).
 * @returns the new tokens only, the stopping token (an eosTokenId, or the one onToken refused) included
 */
export function generate(lm: CausalLM, defaults: GenerationConfig, prompt: Int32Array | readonly number[], opts: GenerateOptions): Int32Array {
  if (!(prompt instanceof Int32Array) && !Array.isArray(prompt)) throw typeError('prompt', 'Int32Array or an array of token ids', prompt);
  if (prompt.length === 0) throw rangeError('prompt', 'at least one token', 'an empty prompt');
  const { vocab: V, maxPositions, maxPositionsKey } = lm.shape;
  checkTokens(prompt, V, 'prompt');
  if (opts === undefined) throw typeError('opts', 'an options object with maxNewTokens', opts);
  const o = checkOptions(opts, 'opts', OPTION_KEYS);
  const count = integerOption(o.maxNewTokens, 'opts.maxNewTokens', 0);
  const temperature = numberOption(o.temperature, 'opts.temperature', 'a finite number >= 0', 0, (v) => v >= 0 && Number.isFinite(v));
  const sampler: SamplerOptions = {
    temperature,
    topK: integerOption(o.topK, 'opts.topK', 1, Number.MAX_SAFE_INTEGER),
    topP: numberOption(o.topP, 'opts.topP', 'a number in (0, 1]', 1, (v) => v > 0 && v <= 1),
    minP: numberOption(o.minP, 'opts.minP', 'a number in [0, 1)', 0, (v) => v >= 0 && v < 1),
  };
  const penalty = numberOption(o.repetitionPenalty, 'opts.repetitionPenalty', 'a finite number > 0', 1, (v) => v > 0 && Number.isFinite(v));
  const eos = new Set(o.eosTokenId === undefined ? defaults.eosTokenId : parseTokenIds(o.eosTokenId, V, 'opts.eosTokenId'));
  if (o.onToken !== undefined && typeof o.onToken !== 'function') throw typeError('opts.onToken', 'a function', o.onToken);
  const onToken = o.onToken as GenerateOptions['onToken'];
  const seed = integerOption(o.seed, 'opts.seed', Number.MIN_SAFE_INTEGER, Math.floor(Math.random() * 2 ** 32));
  const total = prompt.length + count;
  if (total > maxPositions) {
    throw rangeError('opts.maxNewTokens', `at most ${maxPositionsKey} - prompt length (${maxPositions} - ${prompt.length})`, String(count));
  }
  const out = new Int32Array(count);
  if (count === 0) return out;
  const random = seededRandom(seed);
  // The repetition penalty works on a float64 copy of each row, over the distinct ids seen so far.
  const penalized = penalty === 1 ? null : new Float64Array(V);
  const seen = new Uint8Array(V), seenIds: number[] = [];
  const see = (t: number): void => {
    if (!seen[t]) seenIds.push(t);
    seen[t] = 1;
  };
  for (const t of prompt) see(t);
  let n = 0;
  const decoder = lm.decoder(total);
  try {
    let logits: Logits = decoder.append(Int32Array.from(prompt)).data;
    while (n < count) {
      if (penalized) {
        penalized.set(logits);
        applyRepetitionPenalty(penalized, seenIds, penalty);
        logits = penalized;
      }
      const token = temperature === 0 ? argmax(logits, 0, V) : sample(logits, 0, V, sampler, random);
      out[n++] = token;
      see(token);
      const refused = onToken?.(token, n - 1) === false;
      if (refused || eos.has(token) || n === count) break;
      logits = decoder.append(out.subarray(n - 1, n)).data;
    }
  } finally {
    decoder.dispose();
  }
  return n === count ? out : out.slice(0, n);
}
