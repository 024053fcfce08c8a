// Pure-JS GEMM kernels (the fallback backend). No validation here: callers pass plans.
import type { MatmulPlan } from '../validate';

/** c[m x n] = a[m x k] @ b[k x n] (+ bias), all row-major and contiguous. */
export function gemm(a: Float32Array, aOff: number, b: Float32Array, bOff: number, c: Float32Array, cOff: number,
  m: number, k: number, n: number, bias: Float32Array | null): void {
  for (let i = 0; i < m; i++) {
    const ci = cOff + i * n;
    if (bias) for (let j = 0; j < n; j++) c[ci + j] = bias[j];
    else c.fill(0, ci, ci + n);
    const ai = aOff + i * k;
    for (let p = 0; p < k; p++) {
      const av = a[ai + p];
      const bp = bOff + p * n;
      for (let j = 0; j < n; j++) c[ci + j] += av * b[bp + j];
    }
  }
}

/** Copies the (rows x cols) matrix at src[off] transposed into a new (cols x rows) array. */
function transposed(src: Float32Array, off: number, rows: number, cols: number): Float32Array {
  const t = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = src[off + r * cols + c];
  return t;
}

export function matmul(plan: MatmulPlan, a: Float32Array, b: Float32Array, bias: Float32Array | null, out: Float32Array): void {
  const { m, k, n, batch, batchDims, aBatchStrides, bBatchStrides } = plan;
  for (let bi = 0; bi < batch; bi++) {
    let aOff = 0, bOff = 0, rem = bi;
    for (let d = batchDims.length - 1; d >= 0; d--) {
      const idx = rem % batchDims[d];
      rem = (rem - idx) / batchDims[d];
      aOff += idx * aBatchStrides[d];
      bOff += idx * bBatchStrides[d];
    }
    const aMat = plan.transA ? transposed(a, aOff, k, m) : a;
    const bMat = plan.transB ? transposed(b, bOff, n, k) : b;
    gemm(aMat, plan.transA ? 0 : aOff, bMat, plan.transB ? 0 : bOff, out, bi * m * n, m, k, n, bias);
  }
}

export function dot(a: Float32Array, b: Float32Array): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const n = a.length;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; i++) s0 += a[i] * b[i];
  return s0 + s1 + (s2 + s3);
}
