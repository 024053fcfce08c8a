// Choosing the next token from a row of logits: greedy argmax, or temperature + top-k sampling
// from a seeded generator (lib/random.ts) so a given seed replays the same continuation.

/** Index of the largest value; ties go to the lowest index and NaN never wins. */
export function argmax(logits: Float32Array, offset = 0, length = logits.length - offset): number {
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
export function topIndices(logits: Float32Array, offset: number, length: number, k: number): number[] {
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

/**
 * Draws an index from softmax(logits / temperature), restricted to the topK largest logits when
 * topK < length (ties at the cut go to the lower index). Probabilities are computed in float64.
 * @param temperature > 0
 * @param topK number of candidates kept (>= length keeps all)
 * @param random uniform [0, 1) source
 */
export function sample(logits: Float32Array, offset: number, length: number, temperature: number, topK: number,
  random: () => number): number {
  const candidates = topK < length ? topIndices(logits, offset, length, topK) : Array.from({ length }, (_, i) => i);
  let max = -Infinity;
  for (const i of candidates) max = Math.max(max, logits[offset + i]);
  // All -inf (or NaN) leaves nothing to weigh: fall back to the greedy choice.
  if (!Number.isFinite(max)) return argmax(logits, offset, length);
  const weights = new Float64Array(candidates.length);
  let total = 0;
  for (let c = 0; c < candidates.length; c++) {
    const w = Math.exp((logits[offset + candidates[c]] - max) / temperature);
    weights[c] = Number.isNaN(w) ? 0 : w;
    total += weights[c];
  }
  let u = random() * total;
  for (let c = 0; c < candidates.length; c++) {
    u -= weights[c];
    if (u < 0) return candidates[c];
  }
  // Rounding can leave u a hair above zero after the last subtraction; the last nonzero weight wins.
  for (let c = candidates.length - 1; c >= 0; c--) if (weights[c] > 0) return candidates[c];
  return candidates[0];
}
