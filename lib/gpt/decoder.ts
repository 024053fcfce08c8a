// Incremental decoding for every model: one KV cache per layer (a DecoderState), so each appended
// token costs one token's work (plus attention over the cached positions) instead of a forward over
// the whole prefix.
import { rangeError, typeError } from '../errors';
import type { DecoderState } from '../models/decoder-spec';
import type { Tensor } from '../types';
import { checkTruncate, disposedError } from '../validate-layers';

export function checkTokens(tokens: ArrayLike<number>, vocab: number, name: string): void {
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (!Number.isInteger(t) || t < 0 || t >= vocab) throw rangeError(`${name}[${i}]`, `a token id in [0, ${vocab})`, String(t));
  }
}

/** Incremental decoding over per-layer KV caches; see GPT.decoder. */
export class GPTDecoder {
  #state: DecoderState | null;

  /** @internal */
  constructor(
    private readonly vocab: number,
    /** Room for this many tokens in all. */
    readonly maxSeqLen: number,
    state: DecoderState,
  ) {
    this.#state = state;
  }

  /** Tokens seen so far. */
  get length(): number {
    return this.#state?.length ?? 0;
  }

  private get state(): DecoderState {
    if (!this.#state) throw disposedError();
    return this.#state;
  }

  /**
   * Feeds tokens at positions length .. length + n - 1 and returns the logits [vocab_size] of the last one.
   * @param tokens one or more token ids
   */
  append(tokens: Int32Array | readonly number[]): Tensor {
    const state = this.state;
    const ids = tokens instanceof Int32Array ? tokens : Array.isArray(tokens) ? Int32Array.from(tokens) : null;
    if (!ids) throw typeError('tokens', 'Int32Array or an array of token ids', tokens);
    if (ids.length === 0) throw rangeError('tokens', 'at least one token', 'none');
    checkTokens(ids, this.vocab, 'tokens');
    if (this.length + ids.length > this.maxSeqLen) {
      throw rangeError('tokens', `at most ${this.maxSeqLen - this.length} tokens (maxSeqLen ${this.maxSeqLen}, ${this.length} used)`,
        `${ids.length} tokens`, 'ERR_ATTN_CACHE_FULL');
    }
    const logits = new Float32Array(this.vocab);
    state.step(ids, ids.length, logits, false);
    return { data: logits, dims: [this.vocab] };
  }

  /** Forgets every position from n on (rollback), keeping the first n. */
  truncate(n: number): void {
    const state = this.state;
    state.truncate(checkTruncate(n, state.length));
  }

  /** Frees the caches now rather than at garbage collection. */
  dispose(): void {
    this.#state?.dispose();
    this.#state = null;
  }
}
