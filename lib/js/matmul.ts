// Pure-JS GEMM (the fallback backend). No validation here: callers pass plans.
//
//   per batch entry: C (m, n) = op(A) (m, k) @ op(B) (k, n) (+ bias (n))
//
// Blocked like the native driver (native/core/matmul.cc), at JS scale: B is packed into 4-column
// panels and A into 4-row panels, both Float64Array so the inner loop converts no float32, and
// each 4x4 tile of C accumulates in 16 locals that the JIT keeps in registers (8 loads per 16
// multiply-adds). Transposed operands are read through strides while packing, never copied
// whole. Calls too small to repay packing, and skinny ones, read the operands where they are.
import type { MatmulPlan } from '../validate';

const KC = 256;
const MC = 64;
const NC = 1024;
// Below this many multiply-adds packing does not pay for itself.
const DIRECT_MAX_MACS = 16384;

// Grow-only scratch shared by every call (JS runs one call at a time on a thread).
let aPack: Float64Array = new Float64Array(0);
let bPack: Float64Array = new Float64Array(0);
let rowAcc: Float64Array = new Float64Array(0);
const edge = new Float64Array(16);

/** Element (r, c) of a matrix view is data[off + r * rs + c * cs]. */
interface View {
  data: Float32Array;
  off: number;
  rs: number;
  cs: number;
}

// A[0:mc, 0:kc] -> 4-row panels: panel q holds A[4q + i, p] at [4q*kc + 4p + i], zero-padded.
function packA(a: View, mc: number, kc: number, dst: Float64Array): void {
  const { data, rs, cs } = a;
  let d = 0;
  for (let i0 = 0; i0 < mc; i0 += 4) {
    const base = a.off + i0 * rs;
    if (mc - i0 >= 4) {
      for (let p = 0; p < kc; p++) {
        const s = base + p * cs;
        dst[d] = data[s];
        dst[d + 1] = data[s + rs];
        dst[d + 2] = data[s + 2 * rs];
        dst[d + 3] = data[s + 3 * rs];
        d += 4;
      }
    } else {
      const rows = mc - i0;
      for (let p = 0; p < kc; p++, d += 4) {
        for (let i = 0; i < 4; i++) dst[d + i] = i < rows ? data[base + p * cs + i * rs] : 0;
      }
    }
  }
}

// B[0:kc, 0:nc] -> 4-column panels: panel q holds B[p, 4q + j] at [4q*kc + 4p + j], zero-padded.
function packB(b: View, kc: number, nc: number, dst: Float64Array): void {
  const { data, rs, cs } = b;
  let d = 0;
  for (let j0 = 0; j0 < nc; j0 += 4) {
    const base = b.off + j0 * cs;
    if (nc - j0 >= 4) {
      for (let p = 0; p < kc; p++) {
        const s = base + p * rs;
        dst[d] = data[s];
        dst[d + 1] = data[s + cs];
        dst[d + 2] = data[s + 2 * cs];
        dst[d + 3] = data[s + 3 * cs];
        d += 4;
      }
    } else {
      const cols = nc - j0;
      for (let p = 0; p < kc; p++, d += 4) {
        for (let j = 0; j < 4; j++) dst[d + j] = j < cols ? data[base + p * rs + j * cs] : 0;
      }
    }
  }
}

// One 4x4 tile: C[ci ...] (+)= Apanel @ Bpanel. With accumulate false, C = A*B + bias (bias may
// be null). Edge tiles (mv or nv < 4) go through `edge` and store only their valid part.
function tile(kc: number, ap: Float64Array, ai: number, bp: Float64Array, bi: number, c: Float32Array, ci: number,
  ldc: number, mv: number, nv: number, accumulate: boolean, bias: Float32Array | null, bo: number): void {
  let i0 = 0, i1 = 0, i2 = 0, i3 = 0;
  if (!accumulate && bias !== null) {
    i0 = bias[bo];
    if (nv > 1) i1 = bias[bo + 1];
    if (nv > 2) i2 = bias[bo + 2];
    if (nv > 3) i3 = bias[bo + 3];
  }
  let c00 = i0, c01 = i1, c02 = i2, c03 = i3, c10 = i0, c11 = i1, c12 = i2, c13 = i3;
  let c20 = i0, c21 = i1, c22 = i2, c23 = i3, c30 = i0, c31 = i1, c32 = i2, c33 = i3;
  for (let p = 0; p < kc; p++) {
    const b0 = bp[bi], b1 = bp[bi + 1], b2 = bp[bi + 2], b3 = bp[bi + 3];
    let a = ap[ai];
    c00 += a * b0; c01 += a * b1; c02 += a * b2; c03 += a * b3;
    a = ap[ai + 1];
    c10 += a * b0; c11 += a * b1; c12 += a * b2; c13 += a * b3;
    a = ap[ai + 2];
    c20 += a * b0; c21 += a * b1; c22 += a * b2; c23 += a * b3;
    a = ap[ai + 3];
    c30 += a * b0; c31 += a * b1; c32 += a * b2; c33 += a * b3;
    ai += 4;
    bi += 4;
  }
  if (mv === 4 && nv === 4) {
    if (accumulate) {
      c[ci] += c00; c[ci + 1] += c01; c[ci + 2] += c02; c[ci + 3] += c03; ci += ldc;
      c[ci] += c10; c[ci + 1] += c11; c[ci + 2] += c12; c[ci + 3] += c13; ci += ldc;
      c[ci] += c20; c[ci + 1] += c21; c[ci + 2] += c22; c[ci + 3] += c23; ci += ldc;
      c[ci] += c30; c[ci + 1] += c31; c[ci + 2] += c32; c[ci + 3] += c33;
    } else {
      c[ci] = c00; c[ci + 1] = c01; c[ci + 2] = c02; c[ci + 3] = c03; ci += ldc;
      c[ci] = c10; c[ci + 1] = c11; c[ci + 2] = c12; c[ci + 3] = c13; ci += ldc;
      c[ci] = c20; c[ci + 1] = c21; c[ci + 2] = c22; c[ci + 3] = c23; ci += ldc;
      c[ci] = c30; c[ci + 1] = c31; c[ci + 2] = c32; c[ci + 3] = c33;
    }
    return;
  }
  edge[0] = c00; edge[1] = c01; edge[2] = c02; edge[3] = c03;
  edge[4] = c10; edge[5] = c11; edge[6] = c12; edge[7] = c13;
  edge[8] = c20; edge[9] = c21; edge[10] = c22; edge[11] = c23;
  edge[12] = c30; edge[13] = c31; edge[14] = c32; edge[15] = c33;
  for (let i = 0; i < mv; i++, ci += ldc) {
    for (let j = 0; j < nv; j++) c[ci + j] = accumulate ? c[ci + j] + edge[4 * i + j] : edge[4 * i + j];
  }
}

function grow(buffer: Float64Array, size: number): Float64Array {
  return buffer.length >= size ? buffer : new Float64Array(size);
}

// C[cOff ...] (m x n, row stride n) = A @ B (+ bias) through packed panels.
function gemmPacked(a: View, b: View, c: Float32Array, cOff: number, m: number, k: number, n: number,
  bias: Float32Array | null): void {
  const kcMax = Math.max(1, Math.min(KC, k));
  aPack = grow(aPack, Math.ceil(Math.min(MC, m) / 4) * 4 * kcMax);
  bPack = grow(bPack, Math.ceil(Math.min(NC, n) / 4) * 4 * kcMax);
  const aBlock: View = { data: a.data, off: 0, rs: a.rs, cs: a.cs };
  const bBlock: View = { data: b.data, off: 0, rs: b.rs, cs: b.cs };
  for (let jc = 0; jc < n; jc += NC) {
    const nc = Math.min(NC, n - jc);
    // k == 0 still runs one pass with kc = 0, which writes the bias (or zeros).
    for (let pc = 0; pc === 0 || pc < k; pc += KC) {
      const kc = Math.min(KC, k - pc);
      const accumulate = pc > 0;
      bBlock.off = b.off + pc * b.rs + jc * b.cs;
      packB(bBlock, kc, nc, bPack);
      for (let ic = 0; ic < m; ic += MC) {
        const mc = Math.min(MC, m - ic);
        aBlock.off = a.off + ic * a.rs + pc * a.cs;
        packA(aBlock, mc, kc, aPack);
        for (let jr = 0; jr < nc; jr += 4) {
          const nv = Math.min(4, nc - jr);
          for (let ir = 0; ir < mc; ir += 4) {
            tile(kc, aPack, ir * kc, bPack, jr * kc, c, cOff + (ic + ir) * n + jc + jr, n, Math.min(4, mc - ir), nv,
              accumulate, bias, jc + jr);
          }
        }
      }
    }
  }
}

// Small products, and those with under 4 columns: each element of C is one dot product over k,
// summed in a local.
function gemmDots(a: View, b: View, c: Float32Array, cOff: number, m: number, k: number, n: number,
  bias: Float32Array | null): void {
  const ad = a.data, bd = b.data, ars = a.rs, acs = a.cs, brs = b.rs, bcs = b.cs;
  for (let i = 0; i < m; i++) {
    const ai = a.off + i * ars, ci = cOff + i * n;
    for (let j = 0; j < n; j++) {
      let s = bias === null ? 0 : bias[j];
      for (let p = 0, ap = ai, bp = b.off + j * bcs; p < k; p++, ap += acs, bp += brs) s += ad[ap] * bd[bp];
      c[ci + j] = s;
    }
  }
}

// Under 4 rows (a row vector times a matrix, say): C row i += A[i, p] * B row p, streaming B's
// rows in order into a float64 row accumulator.
function gemmRows(a: View, b: View, c: Float32Array, cOff: number, m: number, k: number, n: number,
  bias: Float32Array | null): void {
  rowAcc = grow(rowAcc, n);
  const acc = rowAcc, ad = a.data, bd = b.data, brs = b.rs, bcs = b.cs;
  for (let i = 0; i < m; i++) {
    if (bias === null) acc.fill(0, 0, n);
    else for (let j = 0; j < n; j++) acc[j] = bias[j];
    const ai = a.off + i * a.rs;
    for (let p = 0; p < k; p++) {
      const av = ad[ai + p * a.cs];
      const bp = b.off + p * brs;
      if (bcs === 1) for (let j = 0; j < n; j++) acc[j] += av * bd[bp + j];
      else for (let j = 0; j < n; j++) acc[j] += av * bd[bp + j * bcs];
    }
    const ci = cOff + i * n;
    for (let j = 0; j < n; j++) c[ci + j] = acc[j];
  }
}

export function matmul(plan: MatmulPlan, a: Float32Array, b: Float32Array, bias: Float32Array | null, out: Float32Array): void {
  const { m, k, n, batch, batchDims, aBatchStrides, bBatchStrides } = plan;
  const gemm = n < 4 || m * n * k <= DIRECT_MAX_MACS ? gemmDots : m < 4 ? gemmRows : gemmPacked;
  const aView: View = { data: a, off: 0, rs: plan.transA ? 1 : k, cs: plan.transA ? m : 1 };
  const bView: View = { data: b, off: 0, rs: plan.transB ? 1 : n, cs: plan.transB ? k : 1 };
  for (let bi = 0; bi < batch; bi++) {
    let aOff = 0, bOff = 0, rem = bi;
    for (let d = batchDims.length - 1; d >= 0; d--) {
      const idx = rem % batchDims[d];
      rem = (rem - idx) / batchDims[d];
      aOff += idx * aBatchStrides[d];
      bOff += idx * bBatchStrides[d];
    }
    aView.off = aOff;
    bView.off = bOff;
    gemm(aView, bView, out, bi * m * n, m, k, n, bias);
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
