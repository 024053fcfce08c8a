// A decoder-only language model as the shared blocks compose it: Embedding -> PreNormBlocks ->
// LmHead, with the full forward pass and incremental decoding every architecture exposes. A model
// (GPT, Llama) builds one from its own blocks and delegates to it, so the sequence checks, the
// caches and the decode step exist once.
import type { Backend } from '../backend';
import { rangeError, shapeError, typeError } from '../errors';
import { checkTokens, GPTDecoder } from '../gpt/decoder';
import { createKVCacheOn, type KVCache } from '../kv-cache';
import type { Tensor } from '../types';
import type { Embedding, LmHead, PreNormBlock } from './blocks';

/** The sizes the stack runs with. */
export interface CausalLMShape {
  readonly vocab: number;
  /** The longest sequence (position embeddings, or the context the config declares). */
  readonly maxPositions: number;
  /** The config key maxPositions comes from, for errors: 'n_positions', 'max_position_embeddings'. */
  readonly maxPositionsKey: string;
  readonly width: number;
  readonly numKVHeads: number;
  readonly headDim: number;
}

/** An integer option >= min; `fallback` when undefined and one is given. */
export function integerOption(value: unknown, name: string, min: number, fallback?: number): number {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'number') throw typeError(name, `an integer >= ${min}`, value);
  if (!Number.isSafeInteger(value) || value < min) throw rangeError(name, `an integer >= ${min}`, String(value));
  return value;
}

export class CausalLM {
  constructor(
    readonly ops: Backend,
    readonly embedding: Embedding,
    readonly blocks: readonly PreNormBlock[],
    readonly head: LmHead,
    readonly shape: CausalLMShape,
  ) {}

  /** Runs blocks [0, upTo) on x (B*S rows) in place; with caches, block i appends to caches[i]. */
  run(x: Float32Array, B: number, S: number, caches: KVCache[] | null, upTo = this.blocks.length): void {
    for (let i = 0; i < upTo; i++) this.blocks[i].forward(x, B, S, this.shape.width, caches ? caches[i] : null);
  }

  /** Checks `batch` sequences of equal length back to back in `tokens`. */
  checkSequence(tokens: unknown, batch: unknown, name: string): { B: number; S: number } {
    if (!(tokens instanceof Int32Array)) throw typeError(name, 'Int32Array', tokens);
    const B = integerOption(batch, 'opts.batch', 1, 1);
    if (tokens.length === 0 || tokens.length % B !== 0) {
      throw shapeError(name, `a positive multiple of batch (${B}) tokens`, `${tokens.length} tokens`);
    }
    const S = tokens.length / B, { maxPositions: max, maxPositionsKey: key } = this.shape;
    if (S > max) throw rangeError(name, `at most ${key} (${max}) tokens per sequence`, String(S));
    checkTokens(tokens, this.shape.vocab, name);
    return { B, S };
  }

  /** Full causal forward pass: logits [B, S, vocab]. */
  forward(tokens: Int32Array, batch: unknown): Tensor {
    const { B, S } = this.checkSequence(tokens, batch, 'tokens');
    const x = this.embedding.forward(tokens, B, S, 0);
    this.run(x, B, S, null);
    return { data: this.head.forward(x, 0, B * S), dims: [B, S, this.shape.vocab] };
  }

  /** An incremental decoder: one KVCache per block, on the model's backend, room for maxSeqLen tokens. */
  decoder(maxSeqLen: unknown): GPTDecoder {
    const { maxPositions: max, maxPositionsKey: key } = this.shape;
    const n = integerOption(maxSeqLen, 'maxSeqLen', 1, max);
    if (n > max) throw rangeError('maxSeqLen', `an integer in [1, ${max}] (${key})`, String(n));
    const { numKVHeads, headDim } = this.shape;
    const caches = this.blocks.map(() => createKVCacheOn(this.ops, { batch: 1, numKVHeads, headDim, maxSeqLen: n }));
    return new GPTDecoder(this.shape.vocab, n, caches, (tokens, start) => {
      const x = this.embedding.forward(tokens, 1, tokens.length, start);
      this.run(x, 1, tokens.length, caches);
      return this.head.forward(x, tokens.length - 1, 1);
    });
  }
}
