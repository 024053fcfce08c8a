// A decoder-only language model as the shared blocks compose it: Embedding -> PreNormBlocks ->
// LmHead, with the full forward pass and incremental decoding every architecture exposes. A model
// (GPT, Llama) builds one from its own blocks and delegates to it, so the sequence checks, the
// caches and the decode step exist once.
import type { Backend } from '../backend';
import { rangeError, shapeError, typeError } from '../errors';
import { checkTokens, GPTDecoder } from '../gpt/decoder';
import { createKVCacheOn, type KVCache } from '../kv-cache';
import type { Tensor } from '../types';
import type { Embedding, LmHead, Padding, PreNormBlock } from './blocks';

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

/** Incremental decoding of a batch of sequences; see CausalLM.batchDecoder. */
export interface BatchDecoder {
  /** Feeds S tokens per row (tokens holds B*S, row after row); returns the logits of each row's last one, (B, vocab). */
  step(tokens: Int32Array, S: number): Float32Array;
  /** Frees the caches now rather than at garbage collection. */
  dispose(): void;
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
  run(x: Float32Array, B: number, S: number, caches: KVCache[] | null, padding: Padding | null = null, upTo = this.blocks.length): void {
    for (let i = 0; i < upTo; i++) this.blocks[i].forward(x, B, S, this.shape.width, caches ? caches[i] : null, padding);
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

  /**
   * Incremental decoding of B sequences of the given lengths together, left-padded to the longest
   * (the caller's first step puts lengths[b] real tokens after max - lengths[b] pads of any valid
   * id): every layer runs once per step for the whole batch. The pads are hidden from every query
   * by an attention mask, and each row counts positions from its first real token (Padding), so
   * a row computes what it would alone. Without padding (equal lengths) neither is needed. The
   * caller sizes maxSeqLen (cache positions, pads included) within the model's positions.
   */
  batchDecoder(lengths: readonly number[], maxSeqLen: number): BatchDecoder {
    const B = lengths.length, longest = Math.max(...lengths);
    const offsets = Int32Array.from(lengths, (n) => longest - n);
    const padded = offsets.some((o) => o > 0);
    const { numKVHeads, headDim, width } = this.shape;
    const caches = this.blocks.map(() => createKVCacheOn(this.ops, { batch: B, numKVHeads, headDim, maxSeqLen }));
    return {
      step: (tokens, S) => {
        const past = caches[0].length, total = past + S;
        let padding: Padding | null = null;
        if (padded) {
          // [B, 1, 1, total]: row b's keys from offsets[b] on, for every head and query.
          const keep = new Uint8Array(B * total);
          for (let b = 0; b < B; b++) keep.fill(1, b * total + offsets[b], (b + 1) * total);
          padding = { attnMask: { data: keep, dims: [B, 1, 1, total] }, offsets };
        }
        const x = this.embedding.forward(tokens, B, S, past, padded ? offsets : null);
        this.run(x, B, S, caches, padding);
        const last = new Float32Array(B * width);
        for (let b = 0; b < B; b++) last.set(x.subarray(((b + 1) * S - 1) * width, (b + 1) * S * width), b * width);
        return this.head.forward(last, 0, B);
      },
      dispose: () => {
        for (const cache of caches) cache.dispose();
      },
    };
  }
}
