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
      let bias = 0;
      if (mask) {
        // Right-aligned broadcast; keys past a short last dim are padded with -inf / false.
        if (j >= md[3]) bias = -Infinity;
        else {
          const at = (((md[0] > 1 ? b : 0) * md[1] + (md[1] > 1 ? h : 0)) * md[2] + (md[2] > 1 ? i : 0)) * md[3] + j;
          bias = bool ? (mask.data[at] ? 0 : -Infinity) : mask.data[at];
        }
      }
      if (nonpad && j >= nonpad[b]) bias = -Infinity;
      if (opts.isCausal) {
        const offset = opts.pastKey ? P : nonpad ? nonpad[b] - Sq : 0;
        if (j > i + offset) bias = -Infinity;
      }
      s += bias;
      if (mode === 2) qk[out + j] = s;
      row[j] = s;
    }
    let max = -Infinity, sum = 0;
    for (let j = 0; j < T; j++) max = Math.max(max, row[j]);
    for (let j = 0; j < T; j++) sum += (row[j] = max === -Infinity ? 0 : Math.exp(row[j] - max));
    for (let j = 0; j < T; j++) {
      const p = sum > 0 ? row[j] / sum : 0;
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
