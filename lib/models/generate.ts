// Generation for every architecture: GenerateOptions checked once, then Hugging Face's per-step
// logits pipeline (lib/gpt/sampling.ts) over a CausalLM's batch decoder, one KV-cached step per
// token. One prompt is a batch of one; several run together, left-padded, each row with its own
// sampler state, so a row gives what its prompt gives alone.
import { rangeError, typeError } from '../errors';
import { applyRepetitionPenalty, argmax, sample, type Logits, type SamplerOptions } from '../gpt/sampling';
import { checkTokens } from '../gpt/decoder';
import { parseTokenIds } from '../gpt/config';
import { seededRandom } from '../random';
import { checkOptions } from '../validate';
import { integerOption, type BatchDecoder, type CausalLM } from './causal-lm';
import { noTokenizerError, type TextTokenizer } from './tokenizer';

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
   * included; returning false ends generation (of that row, in a batch) after that token. In a
   * batch, `row` is the prompt's index.
   */
  onToken?: (token: number, index: number, row: number) => boolean | void;
  /**
   * Seed of the sampler; the same seed gives the same tokens. In a batch every row samples from
   * its own stream of this seed, as it would alone. Default: a random seed.
   */
  seed?: number;
}

/** Generation defaults a model carries. */
export interface GenerationConfig {
  /** Token ids generate stops at by default; empty: none. */
  eosTokenId: readonly number[];
}

/** One prompt (token ids) or, for generate's batch form, several. */
export type Prompt = Int32Array | readonly number[];

const OPTION_KEYS = ['maxNewTokens', 'temperature', 'topK', 'topP', 'minP', 'repetitionPenalty', 'eosTokenId', 'onToken', 'seed'];

function numberOption(value: unknown, name: string, expected: string, fallback: number, ok: (v: number) => boolean): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') throw typeError(name, expected, value);
  if (!ok(value)) throw rangeError(name, expected, String(value));
  return value;
}

/** The checked options of one generate call. */
interface Plan {
  count: number;
  sampler: SamplerOptions;
  penalty: number;
  eos: ReadonlySet<number>;
  onToken: GenerateOptions['onToken'];
  seed: number;
}

function checkGenerateOptions(opts: unknown, defaults: GenerationConfig, V: number): Plan {
  if (opts === undefined) throw typeError('opts', 'an options object with maxNewTokens', opts);
  const o = checkOptions(opts, 'opts', OPTION_KEYS);
  const count = integerOption(o.maxNewTokens, 'opts.maxNewTokens', 0);
  const sampler: SamplerOptions = {
    temperature: numberOption(o.temperature, 'opts.temperature', 'a finite number >= 0', 0, (v) => v >= 0 && Number.isFinite(v)),
    topK: integerOption(o.topK, 'opts.topK', 1, Number.MAX_SAFE_INTEGER),
    topP: numberOption(o.topP, 'opts.topP', 'a number in (0, 1]', 1, (v) => v > 0 && v <= 1),
    minP: numberOption(o.minP, 'opts.minP', 'a number in [0, 1)', 0, (v) => v >= 0 && v < 1),
  };
  const penalty = numberOption(o.repetitionPenalty, 'opts.repetitionPenalty', 'a finite number > 0', 1, (v) => v > 0 && Number.isFinite(v));
  const eos = new Set(o.eosTokenId === undefined ? defaults.eosTokenId : parseTokenIds(o.eosTokenId, V, 'opts.eosTokenId'));
  if (o.onToken !== undefined && typeof o.onToken !== 'function') throw typeError('opts.onToken', 'a function', o.onToken);
  const seed = integerOption(o.seed, 'opts.seed', Number.MIN_SAFE_INTEGER, Math.floor(Math.random() * 2 ** 32));
  return { count, sampler, penalty, eos, onToken: o.onToken as GenerateOptions['onToken'], seed };
}

/** One prompt checked: a new Int32Array (the caller's array is never written). */
function checkPrompt(prompt: unknown, V: number, name: string): Int32Array {
  if (!(prompt instanceof Int32Array) && !Array.isArray(prompt)) throw typeError(name, 'Int32Array or an array of token ids', prompt);
  if (prompt.length === 0) throw rangeError(name, 'at least one token', 'an empty prompt');
  checkTokens(prompt, V, name);
  return Int32Array.from(prompt);
}

/** One row's sampling state: its output, the ids it has seen (for the repetition penalty), its own random stream. */
class Row {
  readonly out: Int32Array;
  n = 0;
  done = false;
  private readonly random: () => number;
  // The repetition penalty works on a float64 copy of each row, over the distinct ids seen so far.
  private readonly penalized: Float64Array | null;
  private readonly seen: Uint8Array;
  private readonly seenIds: number[] = [];

  constructor(prompt: Int32Array, private readonly plan: Plan, private readonly V: number, private readonly index: number) {
    this.out = new Int32Array(plan.count);
    this.random = seededRandom(plan.seed);
    this.penalized = plan.penalty === 1 ? null : new Float64Array(V);
    this.seen = new Uint8Array(V);
    for (const t of prompt) this.see(t);
  }

  private see(t: number): void {
    if (!this.seen[t]) this.seenIds.push(t);
    this.seen[t] = 1;
  }

  /** Picks the next token from logits[from, from + V); done after a stopping token or the last one. */
  next(logits: Float32Array, from: number): void {
    const { V, plan } = this;
    let row: Logits = logits.subarray(from, from + V);
    if (this.penalized) {
      this.penalized.set(row);
      applyRepetitionPenalty(this.penalized, this.seenIds, plan.penalty);
      row = this.penalized;
    }
    const token = plan.sampler.temperature === 0 ? argmax(row, 0, V) : sample(row, 0, V, plan.sampler, this.random);
    this.out[this.n++] = token;
    this.see(token);
    const refused = plan.onToken?.(token, this.n - 1, this.index) === false;
    this.done = refused || plan.eos.has(token) || this.n === plan.count;
  }

  get last(): number {
    return this.out[this.n - 1];
  }

  result(): Int32Array {
    return this.n === this.out.length ? this.out : this.out.slice(0, this.n);
  }
}

/**
 * Generation for every prompt at once: one batch decoder step per token for all rows. A finished
 * row stays in the batch (the cache has one shape) and is fed its own last token, whose logits are
 * ignored. The sync and async drivers below run the same steps.
 */
class Generation {
  readonly rows: Row[];
  readonly decoder: BatchDecoder | null;
  /** The first step's tokens: every prompt left-padded to the longest. */
  readonly first: Int32Array;
  readonly longest: number;

  constructor(lm: CausalLM, prompts: Int32Array[], plan: Plan, lengthName: string) {
    const { vocab: V, maxPositions, maxPositionsKey } = lm.shape;
    this.longest = Math.max(...prompts.map((p) => p.length));
    if (this.longest + plan.count > maxPositions) {
      throw rangeError('opts.maxNewTokens', `at most ${maxPositionsKey} - ${lengthName} (${maxPositions} - ${this.longest})`, String(plan.count));
    }
    this.rows = prompts.map((p, b) => new Row(p, plan, V, b));
    this.first = new Int32Array(prompts.length * this.longest);
    prompts.forEach((p, b) => this.first.set(p, (b + 1) * this.longest - p.length));
    this.decoder = plan.count === 0 ? null : lm.batchDecoder(prompts.map((p) => p.length), this.longest + plan.count);
  }

  /** Takes a step's logits; returns the next step's tokens, or null when every row is done. */
  accept(logits: Float32Array, V: number): Int32Array | null {
    this.rows.forEach((r, b) => {
      if (!r.done) r.next(logits, b * V);
    });
    return this.rows.every((r) => r.done) ? null : Int32Array.from(this.rows, (r) => r.last);
  }

  results(): Int32Array[] {
    return this.rows.map((r) => r.result());
  }
}

function generateRows(lm: CausalLM, prompts: Int32Array[], plan: Plan, lengthName: string): Int32Array[] {
  const g = new Generation(lm, prompts, plan, lengthName);
  if (!g.decoder) return g.results();
  try {
    let tokens: Int32Array | null = g.first, S = g.longest;
    while ((tokens = g.accept(g.decoder.step(tokens, S), lm.shape.vocab))) S = 1;
  } finally {
    g.decoder.dispose();
  }
  return g.results();
}

/** Throws the signal's reason once it is aborted. */
function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason;
}

/** generateRows with each step on the libuv pool (native backend), stopping at the next step after an abort. */
async function generateRowsAsync(lm: CausalLM, prompts: Int32Array[], plan: Plan, lengthName: string, signal?: AbortSignal): Promise<Int32Array[]> {
  checkAborted(signal);
  const g = new Generation(lm, prompts, plan, lengthName);
  if (!g.decoder) return g.results();
  try {
    let tokens: Int32Array | null = g.first, S = g.longest;
    for (;;) {
      const logits = await g.decoder.stepAsync(tokens, S);
      checkAborted(signal);
      if (!(tokens = g.accept(logits, lm.shape.vocab))) break;
      S = 1;
    }
  } finally {
    g.decoder.dispose();
  }
  return g.results();
}

/** The prompts of generate's input: an array of arrays is a batch; an array of numbers (or an Int32Array) is one prompt. */
function promptsOf(input: unknown, V: number): { prompts: Int32Array[]; batch: boolean } {
  if (Array.isArray(input) && input.length > 0 && typeof input[0] === 'object') {
    return { prompts: (input as readonly unknown[]).map((p, b) => checkPrompt(p, V, `prompts[${b}]`)), batch: true };
  }
  if (Array.isArray(input) && input.length === 0) {
    throw rangeError('prompt', 'at least one token (or, as a batch, at least one prompt)', 'an empty array');
  }
  return { prompts: [checkPrompt(input, V, 'prompt')], batch: false };
}

/**
 * Generates up to opts.maxNewTokens tokens after the prompt, or after each of several prompts in
 * one batch (see GPT.generate, Llama.generate): row b of a batch's result is what prompts[b] gives
 * alone. Prompts may differ in length; none is modified.
 * @returns the new tokens only (per prompt, for a batch), the stopping token (an eosTokenId, or the one onToken refused) included
 */
export function generate(lm: CausalLM, defaults: GenerationConfig, prompt: Prompt, opts: GenerateOptions): Int32Array;
export function generate(lm: CausalLM, defaults: GenerationConfig, prompts: readonly Prompt[], opts: GenerateOptions): Int32Array[];
export function generate(lm: CausalLM, defaults: GenerationConfig, input: Prompt | readonly Prompt[], opts: GenerateOptions): Int32Array | Int32Array[];
export function generate(lm: CausalLM, defaults: GenerationConfig, input: Prompt | readonly Prompt[], opts: GenerateOptions): Int32Array | Int32Array[] {
  const V = lm.shape.vocab, { prompts, batch } = promptsOf(input, V);
  const rows = generateRows(lm, prompts, checkGenerateOptions(opts, defaults, V), batch ? 'longest prompt length' : 'prompt length');
  return batch ? rows : rows[0];
}

/** Options of the async forms: generate's, plus an AbortSignal. */
export interface GenerateAsyncOptions extends GenerateOptions {
  /**
   * Aborting stops generation before its next step: the promise rejects (the stream throws) with
   * the signal's reason, and the model stays usable.
   */
  signal?: AbortSignal;
}

function checkSignal(value: unknown): AbortSignal | undefined {
  if (value === undefined || value instanceof AbortSignal) return value;
  throw typeError('opts.signal', 'an AbortSignal', value);
}

/** The options of an async form: generate's checked, and the signal. */
function checkAsyncOptions(opts: unknown, defaults: GenerationConfig, V: number): { plan: Plan; signal?: AbortSignal } {
  if (opts === undefined || opts === null || typeof opts !== 'object') return { plan: checkGenerateOptions(opts, defaults, V) };
  const { signal, ...rest } = opts as GenerateAsyncOptions;
  return { plan: checkGenerateOptions(rest, defaults, V), signal: checkSignal(signal) };
}

/**
 * generate off the event loop: the same result, each step (a whole forward pass of the batch) one
 * job on the libuv pool with the native backend (the JS backend computes each step on the calling
 * thread, yielding between steps). opts.signal aborts between steps.
 */
export async function generateAsync(lm: CausalLM, defaults: GenerationConfig, input: Prompt | readonly Prompt[],
  opts: GenerateAsyncOptions): Promise<Int32Array | Int32Array[]> {
  const V = lm.shape.vocab, { prompts, batch } = promptsOf(input, V);
  const { plan, signal } = checkAsyncOptions(opts, defaults, V);
  const rows = await generateRowsAsync(lm, prompts, plan, batch ? 'longest prompt length' : 'prompt length', signal);
  return batch ? rows : rows[0];
}

/**
 * The tokens of one prompt as they are generated, each step on the libuv pool (as generateAsync):
 * token ids for a token prompt; for a string prompt (which needs the model's tokenizer) the text
 * each token adds, decoded without special tokens (a piece may be empty while a multi-byte
 * character is incomplete). Leaving the loop early (break) frees the caches.
 */
export async function* stream(lm: CausalLM, defaults: GenerationConfig, tokenizer: TextTokenizer | null, prompt: Prompt | string,
  opts: GenerateAsyncOptions): AsyncGenerator<number | string, void, undefined> {
  const V = lm.shape.vocab, text = typeof prompt === 'string';
  if (text && tokenizer === null) throw noTokenizerError();
  const ids = text ? Int32Array.from(tokenizer!.encode(prompt)) : checkPrompt(prompt, V, 'prompt');
  if (ids.length === 0) throw rangeError('prompt', 'text the tokenizer encodes to at least one token', JSON.stringify(prompt));
  const { plan, signal } = checkAsyncOptions(opts, defaults, V);
  checkAborted(signal);
  const g = new Generation(lm, [ids], plan, 'prompt length');
  if (!g.decoder) return;
  const row = g.rows[0];
  let shown = '';
  try {
    let tokens: Int32Array | null = g.first, S = g.longest;
    for (;;) {
      const logits = await g.decoder.stepAsync(tokens, S);
      checkAborted(signal);
      tokens = g.accept(logits, V);
      if (!text) {
        yield row.last;
      } else {
        const all = tokenizer!.decode(row.out.subarray(0, row.n), { skipSpecialTokens: true });
        // A token that ends inside a multi-byte character decodes to a replacement char for now.
        const stable = all.endsWith('\uFFFD') ? shown : all;
        yield stable.slice(shown.length);
        shown = stable;
      }
      if (!tokens) break;
      S = 1;
    }
    if (text) {
      const all = tokenizer!.decode(row.out.subarray(0, row.n), { skipSpecialTokens: true });
      if (all.length > shown.length) yield all.slice(shown.length);
    }
  } finally {
    g.decoder.dispose();
  }
}

/** Options of generateText: generate's, plus stop sequences. */
export interface GenerateTextOptions extends GenerateOptions {
  /**
   * Stop as soon as the generated text contains one of these strings; the returned text ends right
   * before it (the stop string itself is not returned).
   */
  stop?: string | readonly string[];
}

function checkStop(value: unknown): string[] {
  if (value === undefined) return [];
  const list = typeof value === 'string' ? [value] : Array.isArray(value) ? value : null;
  if (list === null || !list.every((s) => typeof s === 'string')) throw typeError('opts.stop', 'a string or an array of strings', value);
  const empty = list.findIndex((s) => s.length === 0);
  if (empty >= 0) throw rangeError(`opts.stop[${empty}]`, 'a non-empty string', '""');
  return list;
}

/**
 * generate from text (see GPT.generateText): the prompt encoded with the model's tokenizer, the new
 * tokens decoded without special tokens (so a generated end-of-sequence token adds no text), cut
 * before the first stop string when one is given.
 */
export function generateText(lm: CausalLM, defaults: GenerationConfig, tokenizer: TextTokenizer | null, prompt: string,
  opts: GenerateTextOptions): string {
  if (tokenizer === null) throw noTokenizerError();
  if (typeof prompt !== 'string') throw typeError('prompt', 'a string', prompt);
  const ids = tokenizer.encode(prompt);
  if (ids.length === 0) throw rangeError('prompt', 'text the tokenizer encodes to at least one token', JSON.stringify(prompt));
  const given = opts && typeof opts === 'object' ? opts : undefined;
  const { stop: stopOption, ...generateOpts } = (given ?? {}) as GenerateTextOptions;
  const stops = checkStop(stopOption);
  if (stops.length === 0) return tokenizer.decode(generate(lm, defaults, ids, given === undefined ? opts : generateOpts), { skipSpecialTokens: true });
  // The text is decoded after every token: a stop string may end inside a token or span several.
  const userOnToken = generateOpts.onToken;
  const produced: number[] = [];
  let cut = -1;
  const onToken = (token: number, index: number, row: number) => {
    const keepGoing = userOnToken?.(token, index, row) !== false;
    produced.push(token);
    const text = tokenizer.decode(produced, { skipSpecialTokens: true });
    for (const stop of stops) {
      const at = text.indexOf(stop);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    return keepGoing && cut < 0;
  };
  const text = tokenizer.decode(generate(lm, defaults, ids, { ...generateOpts, onToken }), { skipSpecialTokens: true });
  return cut >= 0 ? text.slice(0, cut) : text;
}
