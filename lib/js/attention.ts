// Attention in plain JS: the readable float32-storage version of the native kernel, with the same
// ONNX semantics (see lib/validate-attention.ts for the plan it runs). It is a flash-style loop:
// keys are visited in tiles and each query row keeps a running max and sum, so no Sq x total score
// matrix is built (ref: https://arxiv.org/abs/2205.14135, and https://arxiv.org/abs/2112.05682).
//
//   q is (B, Hq, Sq, D), k is (B, Hkv, total, D), v is (B, Hkv, total, Dv), y is (B, Hq, Sq, Dv),
//   each a strided view (4-D or 3-D ONNX layout, or the present buffer); qkOut is (B, Hq, Sq, total).
//
// The query rows that share one kv head (the Hq / Hkv heads of a GQA group, all Sq positions) are
// processed ROWS at a time, so each key and value element loaded serves ROWS rows: this is what
// makes the JS path reach ~2 GFLOP/s instead of being bound by typed-array loads. The arithmetic is
// JS numbers (float64); only storage is float32. Keys and values of a half-precision KV cache
// (Uint16Array bits) are widened one tile at a time, exactly, as the native kernels do.
import { f16ToF32Table } from '../gpt/safetensors';
import type { WeightDtype } from '../models/decoder-spec';
import type { AttentionPlan, ViewStrides } from '../validate-attention';

/** Keys or values: float32, or the bits of a 16-bit cache (kvDtype 'F16' or 'BF16'). */
export type KVArray = Float32Array | Uint16Array;

const ROWS = 4;
const TILE = 64;

/** Per-call scratch: the ROWS query rows (pre-scaled), the score tile, the output accumulators. */
interface Scratch {
  q: Float64Array;
  s: Float64Array;
  acc: Float64Array;
  max: Float64Array;
  sum: Float64Array;
  /** Keys j >= limit[r] are masked for row r (padding, causal, short mask). */
  limit: Int32Array;
  maskRow: Float64Array;
  yRow: Float64Array;
  qkRow: Float64Array;
  /** One tile of 16-bit keys, then values, widened (TILE * max(D, Dv)); empty for float32 ones. */
  wide: Float32Array;
  wideBits: Uint32Array;
}

export function attention(plan: AttentionPlan, q: Float32Array, k: KVArray, v: KVArray,
  y: Float32Array, qkOut: Float32Array | null, kvDtype: WeightDtype = 'F32'): void {
  const { B, Hq, Hkv, Sq, D, Dv } = plan;
  const wide = new Float32Array(kvDtype === 'F32' ? 0 : TILE * Math.max(D, Dv));
  const scratch: Scratch = {
    q: new Float64Array(ROWS * D), s: new Float64Array(ROWS * TILE), acc: new Float64Array(ROWS * Dv),
    max: new Float64Array(ROWS), sum: new Float64Array(ROWS), limit: new Int32Array(ROWS),
    maskRow: new Float64Array(ROWS), yRow: new Float64Array(ROWS), qkRow: new Float64Array(ROWS),
    wide, wideBits: new Uint32Array(wide.buffer),
  };
  const rowsPerKvHead = (Hq / Hkv) * Sq;
  for (let b = 0; b < B; b++) {
    for (let hk = 0; hk < Hkv; hk++) {
      for (let r0 = 0; r0 < rowsPerKvHead; r0 += ROWS) {
        const rows = Math.min(ROWS, rowsPerKvHead - r0);
        loadRows(plan, q, b, hk, r0, rows, scratch);
        attendRows(plan, k, v, kvDtype, b, hk, rows, scratch, qkOut);
        storeRows(plan, y, rows, scratch, qkOut);
      }
    }
  }
}

/** Row r0 + r of kv head hk is query head hk * group + floor((r0 + r) / Sq), position (r0 + r) % Sq. */
function loadRows(plan: AttentionPlan, q: Float32Array, b: number, hk: number, r0: number, rows: number, s: Scratch): void {
  const { Hq, Hkv, Sq, D, Dv, total, scale, mask, kvValid, causalOffset } = plan;
  const group = Hq / Hkv;
  for (let r = 0; r < rows; r++) {
    const h = hk * group + Math.floor((r0 + r) / Sq), i = (r0 + r) % Sq;
    const qOff = b * plan.q.sb + h * plan.q.sh + i * plan.q.st;
    for (let d = 0; d < D; d++) s.q[d * ROWS + r] = scale * q[qOff + d];
    let limit = total;
    if (mask) limit = Math.min(limit, mask.len);
    if (kvValid) limit = Math.min(limit, kvValid[b]);
    if (causalOffset) limit = Math.min(limit, Math.max(0, i + causalOffset[b] + 1));
    s.limit[r] = limit;
    s.maskRow[r] = mask ? b * mask.sb + h * mask.sh + i * mask.sq : 0;
    s.yRow[r] = b * plan.y.sb + h * plan.y.sh + i * plan.y.st;
    s.qkRow[r] = ((b * Hq + h) * Sq + i) * total;
    s.max[r] = -Infinity;
    s.sum[r] = 0;
  }
  s.acc.fill(0, 0, rows * Dv);
}

/**
 * The online softmax over key tiles, for each row:
 *   S = scores of the tile (scale, softcap, mask)
 *   m_new <- max(m, rowmax(S))
 *   l     <- exp(m - m_new) * l + rowsum(exp(S - m_new))
 *   O     <- exp(m - m_new) * O + exp(S - m_new) @ V
 * and y = O / l at the end.
 */
function attendRows(plan: AttentionPlan, k: KVArray, v: KVArray, kvDtype: WeightDtype, b: number, hk: number,
  rows: number, s: Scratch, qkOut: Float32Array | null): void {
  const { D, Dv, total, qkMode } = plan;
  // Without a qk output, keys past every row's limit are never needed (causal tiles are skipped);
  // modes 0 and 1 report scores for masked keys too, so then every key is visited.
  let end = 0;
  for (let r = 0; r < rows; r++) end = Math.max(end, s.limit[r]);
  if (qkMode >= 0) end = total;
  const kBase = b * plan.k.sb + hk * plan.k.sh, kSt = plan.k.st;
  const vBase = b * plan.v.sb + hk * plan.v.sh, vSt = plan.v.st;
  for (let j0 = 0; j0 < end; j0 += TILE) {
    const n = Math.min(TILE, end - j0);
    const [kt, kOff, kStep] = k instanceof Float32Array ? [k, kBase + j0 * kSt, kSt] : [widen(k, kBase + j0 * kSt, kSt, n, D, kvDtype, s), 0, D];
    if (rows === ROWS) scores4(s.q, kt, kOff, kStep, D, n, s.s);
    else for (let r = 0; r < rows; r++) scores1(s.q, r, kt, kOff, kStep, D, n, s.s);
    for (let r = 0; r < rows; r++) softmaxTile(plan, s, r, j0, n, qkOut);
    const [vt, vOff, vStep] = v instanceof Float32Array ? [v, vBase + j0 * vSt, vSt] : [widen(v, vBase + j0 * vSt, vSt, n, Dv, kvDtype, s), 0, Dv];
    if (rows === ROWS) accumulate4(s.s, vt, vOff, vStep, Dv, n, s.acc);
    else for (let r = 0; r < rows; r++) accumulate1(s.s, r * TILE, vt, vOff, vStep, Dv, n, s.acc, r * Dv);
  }
}

/** n rows of d 16-bit elements from off (row j at off + j * st), widened into s.wide, n * d contiguous. */
function widen(bits: Uint16Array, off: number, st: number, n: number, d: number, dtype: WeightDtype, s: Scratch): Float32Array {
  if (dtype === 'F16') {
    const table = f16ToF32Table(), out = s.wide;
    for (let j = 0; j < n; j++) for (let e = 0, o = off + j * st; e < d; e++) out[j * d + e] = table[bits[o + e]];
  } else {
    const out = s.wideBits;  // bfloat16 is the top half of a float32
    for (let j = 0; j < n; j++) for (let e = 0, o = off + j * st; e < d; e++) out[j * d + e] = bits[o + e] << 16;
  }
  return s.wide;
}

/**
 * out[r * TILE + j] = q_r . k_j for the 4 rows and n keys from kOff (k_j at kOff + j * kSt), two keys
 * per pass. q is interleaved (q[d * ROWS + r]) so the four rows' elements sit together.
 */
function scores4(q: Float64Array, k: Float32Array, kOff: number, kSt: number, D: number, n: number, out: Float64Array): void {
  let j = 0;
  for (; j + 2 <= n; j += 2) {
    const o0 = kOff + j * kSt, o1 = o0 + kSt;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0, t0 = 0, t1 = 0, t2 = 0, t3 = 0;
    for (let d = 0, e = 0; d < D; d++, e += ROWS) {
      const a = k[o0 + d], c = k[o1 + d];
      const x0 = q[e], x1 = q[e + 1], x2 = q[e + 2], x3 = q[e + 3];
      s0 += x0 * a; s1 += x1 * a; s2 += x2 * a; s3 += x3 * a;
      t0 += x0 * c; t1 += x1 * c; t2 += x2 * c; t3 += x3 * c;
    }
    out[j] = s0; out[TILE + j] = s1; out[2 * TILE + j] = s2; out[3 * TILE + j] = s3;
    out[j + 1] = t0; out[TILE + j + 1] = t1; out[2 * TILE + j + 1] = t2; out[3 * TILE + j + 1] = t3;
  }
  if (j < n) {
    const o = kOff + j * kSt;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let d = 0, e = 0; d < D; d++, e += ROWS) {
      const a = k[o + d];
      s0 += q[e] * a; s1 += q[e + 1] * a; s2 += q[e + 2] * a; s3 += q[e + 3] * a;
    }
    out[j] = s0; out[TILE + j] = s1; out[2 * TILE + j] = s2; out[3 * TILE + j] = s3;
  }
}

/** out[r * TILE + j] = q_r . k_j for one row r (fewer than ROWS rows left), four keys per pass. */
function scores1(q: Float64Array, r: number, k: Float32Array, kOff: number, kSt: number, D: number, n: number, out: Float64Array): void {
  const base = r * TILE;
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const o0 = kOff + j * kSt, o1 = o0 + kSt, o2 = o1 + kSt, o3 = o2 + kSt;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let d = 0, e = r; d < D; d++, e += ROWS) {
      const x = q[e];
      s0 += x * k[o0 + d]; s1 += x * k[o1 + d]; s2 += x * k[o2 + d]; s3 += x * k[o3 + d];
    }
    out[base + j] = s0; out[base + j + 1] = s1; out[base + j + 2] = s2; out[base + j + 3] = s3;
  }
  for (; j < n; j++) {
    const o = kOff + j * kSt;
    let s0 = 0;
    for (let d = 0, e = r; d < D; d++, e += ROWS) s0 += q[e] * k[o + d];
    out[base + j] = s0;
  }
}

/** Row r of the score tile, in place: softcap, then the mask and key limit; writes the qk output stage. */
function biasScores(plan: AttentionPlan, s: Scratch, r: number, j0: number, n: number, qkOut: Float32Array | null): void {
  const { softcap, qkMode, mask } = plan;
  const added = mask && !mask.bool ? mask.data : null, allowed = mask && mask.bool ? mask.data : null;
  const tile = s.s, base = r * TILE, visible = s.limit[r] - j0, maskRow = s.maskRow[r] + j0, qkRow = s.qkRow[r] + j0;
  for (let j = 0; j < n; j++) {
    let x = tile[base + j];
    if (qkMode === 0) qkOut![qkRow + j] = x;
    if (softcap > 0) x = softcap * Math.tanh(x / softcap);
    if (qkMode === 1) qkOut![qkRow + j] = x;
    if (j >= visible) x = -Infinity;
    else if (added) x += added[maskRow + j];
    else if (allowed && allowed[maskRow + j] === 0) x = -Infinity;
    if (qkMode >= 2) qkOut![qkRow + j] = x;
    tile[base + j] = x;
  }
}

/** Turns row r of the score tile into exp(S - m_new), updating m, l and rescaling O. */
function softmaxTile(plan: AttentionPlan, s: Scratch, r: number, j0: number, n: number, qkOut: Float32Array | null): void {
  const tile = s.s, base = r * TILE;
  if (plan.mask || plan.softcap > 0 || plan.qkMode >= 0) biasScores(plan, s, r, j0, n, qkOut);
  else for (let j = Math.max(0, s.limit[r] - j0); j < n; j++) tile[base + j] = -Infinity;
  let tileMax = -Infinity;
  for (let j = 0; j < n; j++) tileMax = Math.max(tileMax, tile[base + j]);
  const mOld = s.max[r], mNew = Math.max(mOld, tileMax);
  if (mNew === -Infinity) {
    // Nothing visible yet: keep O and l at 0 (and avoid exp(-inf - (-inf)) = NaN).
    tile.fill(0, base, base + n);
    return;
  }
  if (mOld !== mNew && mOld !== -Infinity) {
    const alpha = Math.exp(mOld - mNew);
    s.sum[r] *= alpha;
    for (let d = r * plan.Dv, e = d + plan.Dv; d < e; d++) s.acc[d] *= alpha;
  }
  let sum = 0;
  for (let j = 0; j < n; j++) {
    const p = Math.exp(tile[base + j] - mNew);
    tile[base + j] = p;
    sum += p;
  }
  s.sum[r] += sum;
  s.max[r] = mNew;
}

/** acc[r * Dv + d] += sum_j p[r * TILE + j] * v_j[d] for the 4 rows, four keys per pass. */
function accumulate4(p: Float64Array, v: Float32Array, vOff: number, vSt: number, Dv: number, n: number, acc: Float64Array): void {
  const a1 = Dv, a2 = 2 * Dv, a3 = 3 * Dv, p1 = TILE, p2 = 2 * TILE, p3 = 3 * TILE;
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const w00 = p[j], w01 = p[j + 1], w02 = p[j + 2], w03 = p[j + 3];
    const w10 = p[p1 + j], w11 = p[p1 + j + 1], w12 = p[p1 + j + 2], w13 = p[p1 + j + 3];
    const w20 = p[p2 + j], w21 = p[p2 + j + 1], w22 = p[p2 + j + 2], w23 = p[p2 + j + 3];
    const w30 = p[p3 + j], w31 = p[p3 + j + 1], w32 = p[p3 + j + 2], w33 = p[p3 + j + 3];
    const o0 = vOff + j * vSt, o1 = o0 + vSt, o2 = o1 + vSt, o3 = o2 + vSt;
    for (let d = 0; d < Dv; d++) {
      const x0 = v[o0 + d], x1 = v[o1 + d], x2 = v[o2 + d], x3 = v[o3 + d];
      acc[d] += w00 * x0 + w01 * x1 + w02 * x2 + w03 * x3;
      acc[a1 + d] += w10 * x0 + w11 * x1 + w12 * x2 + w13 * x3;
      acc[a2 + d] += w20 * x0 + w21 * x1 + w22 * x2 + w23 * x3;
      acc[a3 + d] += w30 * x0 + w31 * x1 + w32 * x2 + w33 * x3;
    }
  }
  for (; j < n; j++) {
    const w0 = p[j], w1 = p[p1 + j], w2 = p[p2 + j], w3 = p[p3 + j];
    const o = vOff + j * vSt;
    for (let d = 0; d < Dv; d++) {
      const x = v[o + d];
      acc[d] += w0 * x;
      acc[a1 + d] += w1 * x;
      acc[a2 + d] += w2 * x;
      acc[a3 + d] += w3 * x;
    }
  }
}

/** acc[accOff + d] += sum_j p[pOff + j] * v_j[d] for one row, four keys per pass. */
function accumulate1(p: Float64Array, pOff: number, v: Float32Array, vOff: number, vSt: number, Dv: number, n: number,
  acc: Float64Array, accOff: number): void {
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const w0 = p[pOff + j], w1 = p[pOff + j + 1], w2 = p[pOff + j + 2], w3 = p[pOff + j + 3];
    const o0 = vOff + j * vSt, o1 = o0 + vSt, o2 = o1 + vSt, o3 = o2 + vSt;
    for (let d = 0; d < Dv; d++) acc[accOff + d] += w0 * v[o0 + d] + w1 * v[o1 + d] + w2 * v[o2 + d] + w3 * v[o3 + d];
  }
  for (; j < n; j++) {
    const w = p[pOff + j], o = vOff + j * vSt;
    for (let d = 0; d < Dv; d++) acc[accOff + d] += w * v[o + d];
  }
}

/** y = O / l (0 for a row that saw no key); in mode 3 the stored scores become probabilities. */
function storeRows(plan: AttentionPlan, y: Float32Array, rows: number, s: Scratch, qkOut: Float32Array | null): void {
  const { Dv, total, qkMode } = plan;
  for (let r = 0; r < rows; r++) {
    const l = s.sum[r], inv = l > 0 ? 1 / l : 0, yRow = s.yRow[r];
    for (let d = 0; d < Dv; d++) y[yRow + d] = s.acc[r * Dv + d] * inv;
    if (qkMode === 3) {
      const m = s.max[r], row = s.qkRow[r];
      for (let j = 0; j < total; j++) qkOut![row + j] = l > 0 ? Math.exp(qkOut![row + j] - m) * inv : 0;
    }
  }
}

/** [B, Hkv, past + Skv, d]: each head's past rows, then its new rows read from x through xView. */
export function concatPresent(plan: AttentionPlan, past: Float32Array, x: Float32Array, xView: ViewStrides, d: number): Float32Array {
  const { B, Hkv, Skv, total } = plan, pastLen = plan.past;
  const out = new Float32Array(B * Hkv * total * d);
  for (let bh = 0; bh < B * Hkv; bh++) {
    const dst = bh * total * d;
    out.set(past.subarray(bh * pastLen * d, (bh + 1) * pastLen * d), dst);
    const base = Math.floor(bh / Hkv) * xView.sb + (bh % Hkv) * xView.sh;
    for (let s = 0; s < Skv; s++) {
      const src = base + s * xView.st;
      out.set(x.subarray(src, src + d), dst + (pastLen + s) * d);
    }
  }
  return out;
}
