// Checkpoints store linear weights as [out, in] (Hugging Face's nn.Linear); the JS-composed blocks
// (lib/models/blocks.ts, used by lib/mla.ts) multiply by [in, out] row-major matrices.

/**
 * The (cols, rows) transpose of a (rows, cols) matrix, in 64 x 64 tiles so reads and writes both
 * stay in cache; in a SharedArrayBuffer when `shared` (an attention layer then uses it without its
 * own pinned copy).
 */
export function transpose(data: Float32Array, rows: number, cols: number, shared = false): Float32Array {
  const out = shared ? new Float32Array(new SharedArrayBuffer(rows * cols * 4)) : new Float32Array(rows * cols);
  for (let r0 = 0; r0 < rows; r0 += 64) {
    for (let c0 = 0; c0 < cols; c0 += 64) {
      const r1 = Math.min(rows, r0 + 64), c1 = Math.min(cols, c0 + 64);
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) out[c * rows + r] = data[r * cols + c];
    }
  }
  return out;
}
