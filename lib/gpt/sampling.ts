// Choosing the next token from a row of logits, in Hugging Face's order: repetition penalty on the
// logits, then temperature, top-k, top-p and min-p; greedy decoding is the penalty then argmax.
// Probabilities are float64 and draws come from a seeded generator (lib/random.ts), so a given
// seed replays the same continuation.

/** A row of logits: the model's float32, or a float64 copy after the repetition penalty. */
export type Logits = Float32Array | Float64Array;

/** Index of the largest value; ties go to the lowest index and NaN never wins. */
export function argmax(logits: Logits, offset = 0, length = logits.length - offset): number {
  let best = -Infinity, index = 0;
  for (let i = 0; i < length; i++) {
    const v = logits[offset + i];
    if (v > best) {
      best = v;
      index = i;
    }
  }
  return index;
}

/**
 * The k largest of logits[offset .. offset + length), as ascending indices; ties at the cut keep
 * the lower index. A size-k min-heap: O(length log k), where sorting the whole vocabulary would
 * cost a noticeable share of a decode step.
 */
export function topIndices(logits: Logits, offset: number, length: number, k: number): number[] {
  const heap: number[] = [];
  // `a` sorts before `b` (is evicted first): smaller value, or equal value and higher index.
  const below = (a: number, b: number): boolean => {
    const va = logits[offset + a], vb = logits[offset + b];
    return va < vb || (va === vb && a > b) || (Number.isNaN(va) && !Number.isNaN(vb));
  };
  const siftDown = (i: number): void => {
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < heap.length && below(heap[l], heap[m])) m = l;
      if (r < heap.length && below(heap[r], heap[m])) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m], heap[i]];
      i = m;
    }
  };
  for (let i = 0; i < length; i++) {
    if (heap.length < k) {
      heap.push(i);
      for (let c = heap.length - 1; c > 0;) {
        const p = (c - 1) >> 1;
        if (!below(heap[c], heap[p])) break;
        [heap[c], heap[p]] = [heap[p], heap[c]];
        c = p;
      }
    } else if (below(heap[0], i)) {
      heap[0] = i;
      siftDown(0);
    }
  }
  return heap.sort((a, b) => a - b);
}

/** What shapes the distribution a token is drawn from, after the repetition penalty; see GenerateOptions. */
export interface SamplerOptions {
  /** > 0 */
  temperature: number;
  /** Candidates kept (>= length keeps all). */
  topK: number;
  /** In (0, 1]; 1 keeps all. */
  topP: number;
  /** In [0, 1); 0 keeps all. */
  minP: number;
}

/**
 * Divides each logit of a token in `tokens` by `penalty` when it is positive and multiplies it
 * when it is not (Hugging Face's RepetitionPenaltyLogitsProcessor), in place.
 * @param tokens distinct token ids (the prompt and what was generated so far)
 */
export function applyRepetitionPenalty(logits: Float64Array, tokens: readonly number[], penalty: number): void {
  for (const t of tokens) logits[t] = logits[t] > 0 ? logits[t] / penalty : logits[t] * penalty;
}

/**
 * The distribution `sample` draws from: softmax(logits / temperature) over the topK largest
 * logits (ties at the cut to the lower index), then only the most likely tokens whose mass before
 * each reaches topP (the token that crosses topP is kept; among equal probabilities the lower index
 * comes first), then only tokens at least minP times as likely as the most likely one. The most
 * likely token always survives.
 * @returns the candidates in ascending order and their unnormalised weights (0 for a token cut by
 *   topP or minP; probabilities are weight / sum), or null when no logit is finite
 */
export function tokenWeights(logits: Logits, offset: number, length: number, opts: SamplerOptions): { tokens: number[]; weights: Float64Array } | null {
  const tokens = opts.topK < length ? topIndices(logits, offset, length, opts.topK) : Array.from({ length }, (_, i) => i);
  let max = -Infinity;
  for (const i of tokens) max = Math.max(max, logits[offset + i]);
  if (!Number.isFinite(max)) return null;
  const weights = new Float64Array(tokens.length);
  let total = 0;
  for (let c = 0; c < tokens.length; c++) {
    const w = Math.exp((logits[offset + tokens[c]] - max) / opts.temperature);
    weights[c] = Number.isNaN(w) ? 0 : w;
    total += weights[c];
  }
  if (opts.topP < 1) {
    // Sorting the whole vocabulary costs a few ms a step, so only when top-p asks for it.
    const order = Array.from(tokens.keys()).sort((a, b) => weights[b] - weights[a] || a - b);
    let above = 0;
    for (const c of order) {
      const w = weights[c];
      if (above >= opts.topP * total) weights[c] = 0;
      above += w;
    }
  }
  // The largest logit has weight exp(0) = 1, so "at least minP times the top probability" is w >= minP.
  if (opts.minP > 0) for (let c = 0; c < weights.length; c++) if (weights[c] < opts.minP) weights[c] = 0;
  return { tokens, weights };
}

/**
 * Draws an index from the distribution of tokenWeights (all logits -inf or NaN: the greedy choice).
 * @param random uniform [0, 1) source
 */
export function sample(logits: Logits, offset: number, length: number, opts: SamplerOptions, random: () => number): number {
  const dist = tokenWeights(logits, offset, length, opts);
  if (dist === null) return argmax(logits, offset, length);
  const { tokens, weights } = dist;
  let total = 0;
  for (const w of weights) total += w;
  let u = random() * total;
  for (let c = 0; c < tokens.length; c++) {
    u -= weights[c];
    if (u < 0) return tokens[c];
  }
  // Rounding can leave u a hair above zero after the last subtraction; the last nonzero weight wins.
  for (let c = tokens.length - 1; c >= 0; c--) if (weights[c] > 0) return tokens[c];
  return tokens[0];
}
