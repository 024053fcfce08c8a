// Choosing the next token from a row of logits: greedy argmax, or temperature + top-k sampling
// from a seeded generator so a given seed replays the same continuation.

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

/** mulberry32: a small, fast 32-bit generator; uniform doubles in [0, 1). */
export function seededRandom(seed: number): () => number {
  // Fold the high bits in so seeds that differ only above 2^32 still differ.
  let s = (seed ^ Math.floor(seed / 4294967296)) >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
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
  let candidates: number[];
  if (topK < length) {
    const order = Array.from({ length }, (_, i) => i);
    order.sort((a, b) => logits[offset + b] - logits[offset + a] || a - b);
    candidates = order.slice(0, topK).sort((a, b) => a - b);
  } else {
    candidates = Array.from({ length }, (_, i) => i);
  }
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
