// The library's one seeded generator: random weights (GPT.random) and token sampling draw from it,
// so a seed replays the same model and the same continuation on every backend.

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
