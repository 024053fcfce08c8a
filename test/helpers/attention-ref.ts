// Float64 reference of ONNX Attention (opset 23/24), written straight from the operator's reference
// implementation (onnx/reference/ops/op_attention.py) and used only by the tests: 3-D inputs are
// reshaped to 4-D, past and new keys concatenated, every score materialized, softmax in float64.
// It shares no code with lib/ so a wrong reading of the spec in lib/ cannot hide here as well.

export interface RefTensor {
  data: ArrayLike<number>;
  dims: readonly number[];
}

export interface RefOptions {
  attnMask?: { data: Float32Array | Uint8Array; dims: readonly number[] };
  pastKey?: RefTensor;
  pastValue?: RefTensor;
  nonpadKvSeqlen?: Int32Array | BigInt64Array;
  isCausal?: boolean;
  scale?: number;
  softcap?: number;
  qNumHeads?: number;
  kvNumHeads?: number;
  qkMatmulOutputMode?: number;
  /**
   * The library's documented NaN/Inf rule instead of the ONNX reference's arithmetic: a key a row
   * cannot see (causal, boolean mask, nonpadKvSeqlen) scores -inf outright, so a NaN/Inf there never
   * reaches the row (the ONNX reference adds -inf to the score, and NaN + -inf is NaN). A float
   * mask still adds. Only the NaN/Inf tests set it; it changes nothing for finite inputs.
   */
  hideMasked?: boolean;
}

export interface RefResult {
  y: Float64Array;
  yDims: number[];
  presentKey: Float64Array;
  presentValue: Float64Array;
  /** The qk_matmul_output of the requested mode (mode 0 when none was requested). */
  qk: Float64Array;
}

/** [B, S, H*d] (3-D) or [B, H, S, d] (4-D) -> [B, H, S, d] in float64. */
function toHeads(t: RefTensor, heads: number | undefined): { data: Float64Array; B: number; H: number; S: number; d: number } {
  if (t.dims.length === 4) {
    const [B, H, S, d] = t.dims;
    return { data: Float64Array.from(t.data as ArrayLike<number>), B, H, S, d };
  }
  const [B, S, hidden] = t.dims;
  const H = heads!, d = hidden / H;
  const out = new Float64Array(B * H * S * d);
  for (let b = 0; b < B; b++) for (let s = 0; s < S; s++) for (let h = 0; h < H; h++) for (let e = 0; e < d; e++) {
    out[((b * H + h) * S + s) * d + e] = t.data[((b * S + s) * H + h) * d + e];
  }
  return { data: out, B, H, S, d };
}

function concatKeys(past: RefTensor | undefined, x: Float64Array, B: number, H: number, S: number, d: number): { data: Float64Array; T: number } {
  const P = past ? past.dims[2] : 0, T = P + S;
  const out = new Float64Array(B * H * T * d);
  for (let bh = 0; bh < B * H; bh++) {
    for (let t = 0; t < P; t++) for (let e = 0; e < d; e++) out[(bh * T + t) * d + e] = past!.data[(bh * P + t) * d + e];
    for (let s = 0; s < S; s++) for (let e = 0; e < d; e++) out[(bh * T + P + s) * d + e] = x[(bh * S + s) * d + e];
  }
  return { data: out, T };
}

export function attentionRef(q: RefTensor, k: RefTensor, v: RefTensor, opts: RefOptions = {}): RefResult {
  const Q = toHeads(q, opts.qNumHeads), K = toHeads(k, opts.kvNumHeads), V = toHeads(v, opts.kvNumHeads);
  const { B, H: Hq, S: Sq, d: D } = Q, Hkv = K.H, Dv = V.d;
  const P = opts.pastKey ? opts.pastKey.dims[2] : 0;
  const Kc = concatKeys(opts.pastKey, K.data, B, Hkv, K.S, D), Vc = concatKeys(opts.pastValue, V.data, B, Hkv, V.S, Dv);
  const T = Kc.T;
  const scale = opts.scale ?? 1 / Math.sqrt(D), cap = opts.softcap ?? 0, mode = opts.qkMatmulOutputMode ?? 0;
  const nonpad = opts.nonpadKvSeqlen ? Array.from(opts.nonpadKvSeqlen, Number) : null;
  const mask = opts.attnMask;
  const md = mask ? [1, 1, 1, ...mask.dims].slice(-4) : [];
  const bool = mask ? Object.prototype.toString.call(mask.data) === '[object Uint8Array]' : false;

  const qk = new Float64Array(B * Hq * Sq * T), y = new Float64Array(B * Hq * Sq * Dv);
  const row = new Float64Array(T);
  for (let b = 0; b < B; b++) for (let h = 0; h < Hq; h++) for (let i = 0; i < Sq; i++) {
    const hk = Math.floor(h / (Hq / Hkv));
    const out = ((b * Hq + h) * Sq + i) * T;
    for (let j = 0; j < T; j++) {
      let s = 0;
      for (let e = 0; e < D; e++) s += Q.data[((b * Hq + h) * Sq + i) * D + e] * Kc.data[((b * Hkv + hk) * T + j) * D + e];
      s *= scale;
      if (mode === 0) qk[out + j] = s;
      if (cap > 0) s = cap * Math.tanh(s / cap);
      if (mode === 1) qk[out + j] = s;
      let bias = 0, hidden = false;
      if (mask) {
        // Right-aligned broadcast; keys past a short last dim are padded with -inf / false.
        if (j >= md[3]) {
          bias = -Infinity;
          hidden = bool;
        } else {
          const at = (((md[0] > 1 ? b : 0) * md[1] + (md[1] > 1 ? h : 0)) * md[2] + (md[2] > 1 ? i : 0)) * md[3] + j;
          bias = bool ? (mask.data[at] ? 0 : -Infinity) : mask.data[at];
          if (bool && !mask.data[at]) hidden = true;
        }
      }
      if (nonpad && j >= nonpad[b]) bias = -Infinity, hidden = true;
      if (opts.isCausal) {
        const offset = opts.pastKey ? P : nonpad ? nonpad[b] - Sq : 0;
        if (j > i + offset) bias = -Infinity, hidden = true;
      }
      s += bias;
      if (opts.hideMasked && hidden) s = -Infinity;
      if (mode === 2) qk[out + j] = s;
      row[j] = s;
    }
    let max = -Infinity, sum = 0;
    for (let j = 0; j < T; j++) max = Math.max(max, row[j]);
    for (let j = 0; j < T; j++) sum += (row[j] = max === -Infinity ? 0 : Math.exp(row[j] - max));
    for (let j = 0; j < T; j++) {
      // A row with no visible key (max -inf) is zeros; otherwise IEEE (a NaN score makes the row NaN).
      const p = max === -Infinity ? 0 : row[j] / sum;
      if (mode === 3) qk[out + j] = p;
      for (let e = 0; e < Dv; e++) y[((b * Hq + h) * Sq + i) * Dv + e] += p * Vc.data[((b * Hkv + hk) * T + j) * Dv + e];
    }
  }
  if (q.dims.length === 4) return { y, yDims: [B, Hq, Sq, Dv], presentKey: Kc.data, presentValue: Vc.data, qk };
  const y3 = new Float64Array(y.length);
  for (let b = 0; b < B; b++) for (let h = 0; h < Hq; h++) for (let i = 0; i < Sq; i++) for (let e = 0; e < Dv; e++) {
    y3[((b * Sq + i) * Hq + h) * Dv + e] = y[((b * Hq + h) * Sq + i) * Dv + e];
  }
  return { y: y3, yDims: [B, Sq, Hq * Dv], presentKey: Kc.data, presentValue: Vc.data, qk };
}

// ---------------------------------------------------------------------------------------------
// Inputs for the attention tests

/** Sizes of one attention call; `past` 0 means no pastKey/pastValue. */
export interface Shape {
  B: number;
  Hq: number;
  Hkv: number;
  Sq: number;
  Skv: number;
  D: number;
  Dv: number;
  past: number;
}

export interface Inputs {
  q: { data: Float32Array; dims: number[] };
  k: { data: Float32Array; dims: number[] };
  v: { data: Float32Array; dims: number[] };
  /** qNumHeads/kvNumHeads for 3-D inputs, pastKey/pastValue when past > 0. */
  opts: RefOptions;
}

/** Deterministic values in [-amp, amp) (mulberry32), seeded per tensor. */
export function values(length: number, seed: number, amp = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296 * 2 - 1) * amp;
  }
  return out;
}

const prod = (dims: readonly number[]) => dims.reduce((p, d) => p * d, 1);

/** q/k/v (and past) of a shape in the 4-D [B, H, S, d] or 3-D [B, S, H*d] layout. */
export function makeInputs(s: Shape, rank: 3 | 4, seed = 1): Inputs {
  const { B, Hq, Hkv, Sq, Skv, D, Dv, past } = s;
  const dims = (H: number, S: number, d: number) => (rank === 4 ? [B, H, S, d] : [B, S, H * d]);
  const t = (d: number[], n: number) => ({ data: values(prod(d), seed * 31 + n), dims: d });
  const opts: RefOptions = rank === 3 ? { qNumHeads: Hq, kvNumHeads: Hkv } : {};
  if (past > 0) {
    opts.pastKey = t([B, Hkv, past, D], 4);
    opts.pastValue = t([B, Hkv, past, Dv], 5);
  }
  return { q: t(dims(Hq, Sq, D), 1), k: t(dims(Hkv, Skv, D), 2), v: t(dims(Hkv, Skv, Dv), 3), opts };
}

/** A float mask in [-2, 2) with about one entry in seven -Infinity. */
export function floatMask(dims: number[], seed: number): { data: Float32Array; dims: number[] } {
  const data = values(prod(dims), seed, 2);
  for (let i = 0; i < data.length; i++) if ((i * 5 + seed) % 7 === 0) data[i] = -Infinity;
  return { data, dims };
}

/** A boolean mask, about 70% true. */
export function boolMask(dims: number[], seed: number): { data: Uint8Array; dims: number[] } {
  const noise = values(prod(dims), seed);
  return { data: Uint8Array.from(noise, (x) => (x < 0.4 ? 1 : 0)), dims };
}
