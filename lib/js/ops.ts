// GPT-2's per-row ops for the JS decoder step (lib/js/decoder.ts): LayerNorm and the tanh GELU,
// in float64 like their native twins (native/core/model_ops.cc).
// Shapes: x is (rows, width) row-major; rows = batch * sequence.

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
