// Pure-JS GEMM (the fallback backend). No validation here: callers pass plans.
//
//   per batch entry: C (m, n) = op(A) (m, k) @ op(B) (k, n) (+ bias (n))
//
// Blocked like the native driver (native/core/matmul.cc), at JS scale: B is packed into 2-column
// panels and A into 3-row panels, both Float64Array so the inner loop converts no float32, and
// each 3x2 tile of C accumulates in 6 locals that the JIT keeps in registers. Transposed
// operands are read through strides while packing, never copied whole. Calls too small to repay
// packing, and skinny ones, read the operands where they are.
import type { MatmulPlan } from '../validate';

// Register tile. On V8 (x64, 16 XMM registers) a 3x2 tile beats 4x4, whose 16 accumulators plus
// operands spill: 4.3 vs 3.6 GFLOP/s at 480^3 on one AMD EPYC (Zen 3) core in a side-by-side
// prototype; 2x4, 4x2 and 3x3 landed between.
const MR = 3;
const NR = 2;
const KC = 240;
const MC = 48;
const NC = 480;
// Below this many multiply-adds packing does not pay for itself.
const DIRECT_MAX_MACS = 16384;

// Grow-only row scratch shared by every call (JS runs one call at a time on a thread).
let rowAcc: Float64Array = new Float64Array(0);

/** Element (r, c) of a matrix view is data[off + r * rs + c * cs]. */
interface View {
  data: Float32Array;
  off: number;
  rs: number;
  cs: number;
}

// A[0:mc, 0:kc] -> 3-row panels: panel q holds A[3q + i, p] at [3q*kc + 3p + i], zero-padded.
function packA(a: View, mc: number, kc: number, dst: Float64Array): void {
  const { data, rs, cs } = a;
  let d = 0;
  for (let i0 = 0; i0 < mc; i0 += MR) {
    const base = a.off + i0 * rs;
    if (mc - i0 >= MR) {
      for (let p = 0, s = base; p < kc; p++, s += cs, d += MR) {
        dst[d] = data[s];
        dst[d + 1] = data[s + rs];
        dst[d + 2] = data[s + 2 * rs];
      }
    } else {
      const rows = mc - i0;
      for (let p = 0; p < kc; p++, d += MR) {
        for (let i = 0; i < MR; i++) dst[d + i] = i < rows ? data[base + p * cs + i * rs] : 0;
      }
    }
  }
}

// B[0:kc, 0:nc] -> 2-column panels: panel q holds B[p, 2q + j] at [2q*kc + 2p + j], zero-padded.
function packB(b: View, kc: number, nc: number, dst: Float64Array): void {
  const { data, rs, cs } = b;
  let d = 0;
  for (let j0 = 0; j0 < nc; j0 += NR) {
    const base = b.off + j0 * cs;
    if (nc - j0 >= NR) {
      for (let p = 0, s = base; p < kc; p++, s += rs, d += NR) {
        dst[d] = data[s];
        dst[d + 1] = data[s + cs];
      }
    } else {
      for (let p = 0, s = base; p < kc; p++, s += rs, d += NR) {
        dst[d] = data[s];
        dst[d + 1] = 0;
      }
    }
  }
}

function grow(buffer: Float64Array, size: number): Float64Array {
  return buffer.length >= size ? buffer : new Float64Array(size);
}

type PackedGemm = (a: View, b: View, c: Float32Array, cOff: number, m: number, k: number, n: number,
  bias: Float32Array | null) => void;

// The packed path: C[cOff ...] (m x n, row stride n) = A @ B (+ bias), a closure over pack
// buffers of the fixed block sizes, created on first use (about 1 MB) and never reallocated.
function createPackedGemm(): PackedGemm {
  const ap = new Float64Array(MC * KC), bp = new Float64Array(KC * NC), acc = new Float64Array(MR * NR);

  // acc = A panel (at ap[ai]) @ B panel (at bp[bi]) over kc steps: one 3x2 tile in 6 locals.
  // Four steps per iteration: TurboFan re-checks each typed array's map, length and base after
  // every loop back-edge (the loop's interrupt check clobbers what it knows), so unrolling
  // spreads those checks over 24 multiply-adds instead of 6.
  function kernel(kc: number, ai: number, bi: number): void {
    let c00 = 0, c01 = 0, c10 = 0, c11 = 0, c20 = 0, c21 = 0;
    const end = ai + MR * kc;
    for (const end4 = end - 3 * MR; ai < end4; ai += 4 * MR, bi += 4 * NR) {
      let b0 = bp[bi], b1 = bp[bi + 1];
      let a = ap[ai]; c00 += a * b0; c01 += a * b1;
      a = ap[ai + 1]; c10 += a * b0; c11 += a * b1;
      a = ap[ai + 2]; c20 += a * b0; c21 += a * b1;
      b0 = bp[bi + 2]; b1 = bp[bi + 3];
      a = ap[ai + 3]; c00 += a * b0; c01 += a * b1;
      a = ap[ai + 4]; c10 += a * b0; c11 += a * b1;
      a = ap[ai + 5]; c20 += a * b0; c21 += a * b1;
      b0 = bp[bi + 4]; b1 = bp[bi + 5];
      a = ap[ai + 6]; c00 += a * b0; c01 += a * b1;
      a = ap[ai + 7]; c10 += a * b0; c11 += a * b1;
      a = ap[ai + 8]; c20 += a * b0; c21 += a * b1;
      b0 = bp[bi + 6]; b1 = bp[bi + 7];
      a = ap[ai + 9]; c00 += a * b0; c01 += a * b1;
      a = ap[ai + 10]; c10 += a * b0; c11 += a * b1;
      a = ap[ai + 11]; c20 += a * b0; c21 += a * b1;
    }
    for (; ai < end; ai += MR, bi += NR) {
      const b0 = bp[bi], b1 = bp[bi + 1];
      let a = ap[ai]; c00 += a * b0; c01 += a * b1;
      a = ap[ai + 1]; c10 += a * b0; c11 += a * b1;
      a = ap[ai + 2]; c20 += a * b0; c21 += a * b1;
    }
    acc[0] = c00; acc[1] = c01; acc[2] = c10; acc[3] = c11; acc[4] = c20; acc[5] = c21;
  }

  return (a, b, c, cOff, m, k, n, bias) => {
    const aBlock: View = { data: a.data, off: 0, rs: a.rs, cs: a.cs };
    const bBlock: View = { data: b.data, off: 0, rs: b.rs, cs: b.cs };
    for (let jc = 0; jc < n; jc += NC) {
      const nc = Math.min(NC, n - jc);
      // k == 0 still runs one pass with kc = 0, which writes the bias (or zeros).
      for (let pc = 0; pc === 0 || pc < k; pc += KC) {
        const kc = Math.min(KC, k - pc);
        const first = pc === 0;
        bBlock.off = b.off + pc * b.rs + jc * b.cs;
        packB(bBlock, kc, nc, bp);
        for (let ic = 0; ic < m; ic += MC) {
          const mc = Math.min(MC, m - ic);
          aBlock.off = a.off + ic * a.rs + pc * a.cs;
          packA(aBlock, mc, kc, ap);
          for (let jr = 0; jr < nc; jr += NR) {
            const nv = Math.min(NR, nc - jr);
            const bias0 = first && bias !== null ? bias[jc + jr] : 0;
            const bias1 = first && bias !== null && nv > 1 ? bias[jc + jr + 1] : 0;
            for (let ir = 0; ir < mc; ir += MR) {
              kernel(kc, ir * kc, jr * kc);
              const mv = Math.min(MR, mc - ir);
              for (let i = 0, ci = cOff + (ic + ir) * n + jc + jr; i < mv; i++, ci += n) {
                if (first) {
                  c[ci] = acc[NR * i] + bias0;
                  if (nv > 1) c[ci + 1] = acc[NR * i + 1] + bias1;
                } else {
                  c[ci] += acc[NR * i];
                  if (nv > 1) c[ci + 1] += acc[NR * i + 1];
                }
              }
            }
          }
        }
      }
    }
  };
}

let packedGemm: PackedGemm | null = null;

function gemmPacked(a: View, b: View, c: Float32Array, cOff: number, m: number, k: number, n: number,
  bias: Float32Array | null): void {
  packedGemm ??= createPackedGemm();
  packedGemm(a, b, c, cOff, m, k, n, bias);
}

// Small products, and those with a single column: each element of C is one dot product over k,
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

// Under 3 rows (a row vector times a matrix, say): C row i += A[i, p] * B row p, streaming B's
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
  const gemm = n < NR || m * n * k <= DIRECT_MAX_MACS ? gemmDots : m < MR ? gemmRows : gemmPacked;
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
