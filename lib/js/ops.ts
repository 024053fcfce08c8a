// The elementwise and per-row model ops (lib/backend.ts: embed, layerNorm, geluTanh, addInPlace).
// Each is O(rows * width), small next to the matmuls around it: one readable float32
// implementation (float64 accumulators) that the native backend shares until it has kernels.
// Shapes: x is (rows, width) row-major; rows = batch * sequence.

/**
 * out[r] = wte[tokens[r]] + wpe[positions[r]] (or wte[tokens[r]] alone when wpe is null).
 * @param wte (vocab, width) token embeddings
 * @param wpe (n_positions, width) learned position embeddings, or null (rotary models)
 */
export function embed(wte: Float32Array, wpe: Float32Array | null, width: number, tokens: ArrayLike<number>,
  positions: ArrayLike<number>, out: Float32Array): void {
  for (let r = 0; r < tokens.length; r++) {
    const t = tokens[r] * width, o = r * width;
    if (wpe === null) {
      out.set(wte.subarray(t, t + width), o);
      continue;
    }
    const p = positions[r] * width;
    for (let i = 0; i < width; i++) out[o + i] = wte[t + i] + wpe[p + i];
  }
}

/**
 * out[r] = (x[r] - mean) / sqrt(var + eps) * gamma + beta, with the biased variance (as torch's
 * LayerNorm). Two passes over the row, so a large mean does not cancel the variance away.
 */
export function layerNorm(x: Float32Array, rows: number, width: number, gamma: Float32Array, beta: Float32Array,
  eps: number, out: Float32Array): void {
  for (let r = 0; r < rows; r++) {
    const o = r * width;
    let sum = 0;
    for (let i = 0; i < width; i++) sum += x[o + i];
    const mean = sum / width;
    let squares = 0;
    for (let i = 0; i < width; i++) {
      const d = x[o + i] - mean;
      squares += d * d;
    }
    const inv = 1 / Math.sqrt(squares / width + eps);
    for (let i = 0; i < width; i++) out[o + i] = (x[o + i] - mean) * inv * gamma[i] + beta[i];
  }
}

const GELU_C = Math.sqrt(2 / Math.PI);

/** GPT-2's GELU, the tanh approximation ("gelu_new"): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), in place. */
export function geluTanh(x: Float32Array): void {
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    x[i] = 0.5 * v * (1 + Math.tanh(GELU_C * (v + 0.044715 * v * v * v)));
  }
}

/** x += y, elementwise (the residual connection). */
export function addInPlace(x: Float32Array, y: Float32Array): void {
  for (let i = 0; i < x.length; i++) x[i] += y[i];
}
