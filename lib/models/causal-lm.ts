// A decoder-only language model as a backend runs it: a DecoderSpec (lib/models/decoder-spec.ts:
// the block kinds and the weights) made into a DecoderModel by the backend active at construction,
// with the full forward pass and incremental decoding every architecture exposes. A model (GPT,
// Llama) builds its spec and delegates to this, so the sequence checks and the decode step exist once.
import type { Backend } from '../backend';
import { rangeError, shapeError, typeError } from '../errors';
import { checkTokens, GPTDecoder } from '../gpt/decoder';
import type { Tensor } from '../types';
import type { DecoderModel, DecoderSpec, DecoderState, WeightDtype } from './decoder-spec';

/** The sizes the stack runs with. */
export interface CausalLMShape {
  readonly vocab: number;
  /** The longest sequence (position embeddings, or the context the config declares). */
  readonly maxPositions: number;
  /** The config key maxPositions comes from, for errors: 'n_positions', 'max_position_embeddings'. */
  readonly maxPositionsKey: string;
}

/** Incremental decoding of a batch of sequences; see CausalLM.batchDecoder. */
export interface BatchDecoder {
  /**
   * Feeds S tokens per row (tokens holds B*S, row after row); returns the logits of each row's last
   * one, (B, vocab), in an array the next step overwrites.
   */
  step(tokens: Int32Array, S: number): Float32Array;
  /** step on the libuv pool (native backend); the same array. */
  stepAsync(tokens: Int32Array, S: number): Promise<Float32Array>;
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
  private readonly model: DecoderModel;

  /** kvDtype: the element type of every KV cache the model's decoding makes. */
  constructor(
    readonly ops: Backend,
    readonly spec: DecoderSpec,
    readonly shape: CausalLMShape,
    readonly kvDtype: WeightDtype,
  ) {
    this.model = ops.createDecoder(spec);
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

  /** Runs `fn` on a fresh state of B rows and room for maxLen positions, freed afterwards. */
  private withState<T>(B: number, maxLen: number, fn: (state: DecoderState) => T): T {
    const state = this.model.state(B, maxLen, null, this.kvDtype);
    try {
      return fn(state);
    } finally {
      state.dispose();
    }
  }

  /** Full causal forward pass: logits [B, S, vocab]. */
  forward(tokens: Int32Array, batch: unknown): Tensor {
    const { B, S } = this.checkSequence(tokens, batch, 'tokens');
    const logits = new Float32Array(B * S * this.shape.vocab);
    this.withState(B, S, (state) => state.step(tokens, S, logits, true));
    return { data: logits, dims: [B, S, this.shape.vocab] };
  }

  /** Layer `layer`'s attention probabilities over one sequence: [numHeads, S, S]. */
  attentionProbabilities(tokens: Int32Array, layer: number): Float32Array {
    const S = tokens.length, probs = new Float32Array(this.spec.numHeads * S * S);
    this.withState(1, S, (state) => state.step(tokens, S, new Float32Array(this.shape.vocab), false, { layer, out: probs }));
    return probs;
  }

  /** An incremental decoder: one KV cache per layer, on the model's backend, room for maxSeqLen tokens. */
  decoder(maxSeqLen: unknown): GPTDecoder {
    const { maxPositions: max, maxPositionsKey: key } = this.shape;
    const n = integerOption(maxSeqLen, 'maxSeqLen', 1, max);
    if (n > max) throw rangeError('maxSeqLen', `an integer in [1, ${max}] (${key})`, String(n));
    return new GPTDecoder(this.shape.vocab, n, this.model.state(1, n, null, this.kvDtype));
  }

  /**
   * Incremental decoding of B sequences of the given lengths together, left-padded to the longest
   * (the caller's first step puts lengths[b] real tokens after max - lengths[b] pads of any valid
   * id): every layer runs once per step for the whole batch. The pads are hidden from every query
   * and each row counts positions from its first real token, so a row computes what it would
   * alone. The caller sizes maxSeqLen (cache positions, pads included) within the model's positions.
   */
  batchDecoder(lengths: readonly number[], maxSeqLen: number): BatchDecoder {
    const B = lengths.length, longest = Math.max(...lengths);
    const state = this.model.state(B, maxSeqLen, Int32Array.from(lengths, (n) => longest - n), this.kvDtype);
    // SharedArrayBuffer-backed: a pool job writes it while JS runs.
    const logits = new Float32Array(new SharedArrayBuffer(B * this.shape.vocab * 4));
    return {
      step: (tokens, S) => {
        state.step(tokens, S, logits, false);
        return logits;
      },
      stepAsync: async (tokens, S) => {
        await state.stepAsync(tokens, S, logits, false);
        return logits;
      },
      dispose: () => state.dispose(),
    };
  }
}
