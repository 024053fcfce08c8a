// Validation for attention(): every argument of ONNX Attention (opset 23/24) is checked here, once,
// and folded into a frozen AttentionPlan that both backends run as is (the native backend encodes
// it for the addon in lib/native/wire.ts; the addon re-checks sizes against the arrays it gets).
import { formatDims, rangeError, shapeError, typeError } from './errors';
import type { AttentionOptions } from './types';
import { checkAttached, checkBoolean, checkDims, checkOptions, checkTensor, isFloat32Array, snapshot } from './validate';

/** The option names attention() accepts; any other name is a RangeError (a typo must not be ignored). */
export const ATTENTION_OPTIONS = [
  'attnMask', 'pastKey', 'pastValue', 'nonpadKvSeqlen', 'isCausal', 'scale', 'softcap',
  'qNumHeads', 'kvNumHeads', 'qkMatmulOutputMode',
] as const;

// Causal offsets and nonpad lengths travel as Int32Array, so key counts must fit in int32.
const MAX_KEYS = 0x7fffffff;

/** Element (b, h, t, d) of a view lives at data[b*sb + h*sh + t*st + d]; d is contiguous. */
export interface ViewStrides {
  readonly sb: number;
  readonly sh: number;
  readonly st: number;
}

/** The mask broadcast to [B, Hq, Sq, len] through strides (0 = broadcast dim); len <= total. */
export interface MaskView {
  readonly data: Float32Array | Uint8Array;
  /** Uint8Array mask: 0 -> -inf, nonzero -> 0. Otherwise the values are added. */
  readonly bool: boolean;
  readonly sb: number;
  readonly sh: number;
  readonly sq: number;
  readonly len: number;
}

/** Everything a backend needs besides q, k, v, y and qkOut, already derived. */
export interface AttentionPlan {
  /** Rank of q/k/v: 4 = [B, H, S, D], 3 = [B, S, H*D]. */
  readonly rank: 3 | 4;
  readonly B: number;
  readonly Hq: number;
  readonly Hkv: number;
  readonly Sq: number;
  /** New keys in k/v (without the past). */
  readonly Skv: number;
  /** Keys in pastKey/pastValue (0 without a past). */
  readonly past: number;
  /** Keys the kernel sees: past + Skv. */
  readonly total: number;
  readonly D: number;
  readonly Dv: number;
  readonly scale: number;
  /** 0 = none. */
  readonly softcap: number;
  readonly causal: boolean;
  /** -1 when no qkMatmulOutput is asked for. */
  readonly qkMode: -1 | 0 | 1 | 2 | 3;
  readonly q: ViewStrides;
  /** Strides of the keys the backend reads: the present buffer when a past is given, else k. */
  readonly k: ViewStrides;
  readonly v: ViewStrides;
  /** Strides of the new keys/values in k and v as given (what a past is concatenated with). */
  readonly kNew: ViewStrides;
  readonly vNew: ViewStrides;
  readonly y: ViewStrides;
  readonly mask: MaskView | null;
  /** Per batch entry, keys j >= kvValid[b] are masked (from nonpadKvSeqlen), or null. */
  readonly kvValid: Int32Array | null;
  /** Per batch entry, query i sees key j iff j <= i + causalOffset[b]; null when not causal. */
  readonly causalOffset: Int32Array | null;
  readonly yDims: readonly number[];
  readonly presentKeyDims: readonly number[] | null;
  readonly presentValueDims: readonly number[] | null;
  readonly qkDims: readonly number[] | null;
}

export interface ValidatedAttention {
  plan: AttentionPlan;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  pastKey: Float32Array | null;
  pastValue: Float32Array | null;
}

function tag(value: unknown): string {
  return Object.prototype.toString.call(value);
}

function checkCount(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number') throw typeError(name, 'a positive integer', value);
  if (!Number.isInteger(value) || value < 1) throw rangeError(name, 'a positive integer', String(value));
  return value;
}

function checkNumber(value: unknown, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') throw typeError(name, 'a number', value);
  if (!Number.isFinite(value) || value < min) throw rangeError(name, min === -Infinity ? 'a finite number' : `a finite number >= ${min}`, String(value));
  return value;
}

function checkMode(value: unknown): -1 | 0 | 1 | 2 | 3 {
  if (value === undefined) return -1;
  if (typeof value !== 'number') throw typeError('opts.qkMatmulOutputMode', 'an integer 0, 1, 2 or 3', value);
  if (value !== 0 && value !== 1 && value !== 2 && value !== 3) throw rangeError('opts.qkMatmulOutputMode', 'an integer 0, 1, 2 or 3', String(value));
  return value;
}

function dims4(dims: readonly number[], name: string, expected: string): [number, number, number, number] {
  if (dims.length !== 4) throw shapeError(name, expected, `dims ${formatDims(dims)}`);
  return [dims[0], dims[1], dims[2], dims[3]];
}

/** Checks an ONNX attn_mask against [B, Hq, Sq, total] (right-aligned broadcast, short last dim allowed). */
export function checkMask(value: unknown, B: number, Hq: number, Sq: number, total: number): MaskView {
  const name = 'opts.attnMask';
  if (typeof value !== 'object' || value === null || !('data' in value) || !('dims' in value)) {
    throw typeError(name, 'a mask {data: Float32Array | Uint8Array, dims}', value);
  }
  const { data, dims } = value as { data: unknown; dims: unknown };
  if (!isFloat32Array(data) && tag(data) !== '[object Uint8Array]') throw typeError(`${name}.data`, 'a Float32Array (added) or Uint8Array (boolean)', data);
  checkAttached(data, `${name}.data`);
  checkAttached(dims, `${name}.dims`);
  const mask = data as Float32Array | Uint8Array;
  const list = snapshot(dims) as number[];
  const size = checkDims(list, name);
  if (mask.length !== size) throw shapeError(name, `data of length ${size} (the product of dims ${formatDims(list)})`, `data of length ${mask.length}`);
  const target = formatDims([B, Hq, Sq, total]);
  const [mb, mh, mq, len] = [1, 1, 1, ...list].slice(-4);
  const fits = (d: number, n: number) => d === 1 || d === n;
  if (list.length > 4 || !fits(mb, B) || !fits(mh, Hq) || !fits(mq, Sq) || len > total) {
    throw shapeError(name, `dims of rank 1 to 4 that broadcast to [B, qNumHeads, Sq, total] = ${target} (last dim at most ${total})`, `dims ${formatDims(list)}`);
  }
  return { data: mask, bool: !isFloat32Array(mask), sq: mq > 1 ? len : 0, sh: mh > 1 ? mq * len : 0, sb: mb > 1 ? mh * mq * len : 0, len };
}

function checkNonpad(value: unknown, B: number, total: number): Int32Array {
  const name = 'opts.nonpadKvSeqlen';
  const kind = tag(value);
  if (kind !== '[object Int32Array]' && kind !== '[object BigInt64Array]') throw typeError(name, `an Int32Array or BigInt64Array of length ${B}`, value);
  checkAttached(value, name);
  const lengths = value as Int32Array | BigInt64Array;
  if (lengths.length !== B) throw shapeError(name, `length ${B} (the batch size)`, `length ${lengths.length}`);
  const valid = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    const n = Number(lengths[b]);
    if (!(n >= 0 && n <= total)) throw rangeError(name, `values in [0, ${total}] (the total key count)`, `${String(lengths[b])} at index ${b}`);
    valid[b] = n;
  }
  return valid;
}

function strides4(H: number, S: number, d: number): ViewStrides {
  return Object.freeze({ sb: H * S * d, sh: S * d, st: d });
}

function strides3(H: number, S: number, d: number): ViewStrides {
  return Object.freeze({ sb: S * H * d, sh: d, st: H * d });
}

/**
 * Checks q, k, v and the options of attention() and returns the plan. Throws TypeError for a wrong
 * kind of value and RangeError for a wrong shape or value, naming the argument.
 */
export function validateAttention(q: unknown, k: unknown, v: unknown, opts: AttentionOptions | undefined): ValidatedAttention {
  const tq = checkTensor(q, 'q'), tk = checkTensor(k, 'k'), tv = checkTensor(v, 'v');
  // A copy: each option (getters included) is read once.
  const o = { ...checkOptions(opts, 'opts', ATTENTION_OPTIONS) };
  const rank = tq.dims.length;
  if (rank !== 3 && rank !== 4) throw shapeError('q', '4-D dims [B, H, S, D] or 3-D dims [B, S, H*D]', `dims ${formatDims(tq.dims)}`);
  for (const [t, name] of [[tk, 'k'], [tv, 'v']] as const) {
    if (t.dims.length !== rank) throw shapeError(name, `${rank}-D dims like q`, `dims ${formatDims(t.dims)}`);
  }
  const qHeads = checkCount(o.qNumHeads, 'opts.qNumHeads');
  const kvHeads = checkCount(o.kvNumHeads, 'opts.kvNumHeads');

  let B: number, Hq: number, Hkv: number, Sq: number, Skv: number, D: number, Dv: number;
  if (rank === 4) {
    [B, Hq, Sq, D] = tq.dims as [number, number, number, number];
    Hkv = tk.dims[1];
    Skv = tk.dims[2];
    if (tk.dims[0] !== B || tk.dims[3] !== D) {
      throw shapeError('k', `dims [${B}, Hkv, Skv, ${D}] (B and D from q ${formatDims(tq.dims)})`, `dims ${formatDims(tk.dims)}`);
    }
    Dv = tv.dims[3];
    if (tv.dims[0] !== B || tv.dims[1] !== Hkv || tv.dims[2] !== Skv) {
      throw shapeError('v', `dims [${B}, ${Hkv}, ${Skv}, Dv] (B, Hkv, Skv from k ${formatDims(tk.dims)})`, `dims ${formatDims(tv.dims)}`);
    }
    if (qHeads !== undefined && qHeads !== Hq) throw rangeError('opts.qNumHeads', `${Hq} (dim 1 of q) or undefined`, String(qHeads));
    if (kvHeads !== undefined && kvHeads !== Hkv) throw rangeError('opts.kvNumHeads', `${Hkv} (dim 1 of k) or undefined`, String(kvHeads));
  } else {
    if (qHeads === undefined) throw typeError('opts.qNumHeads', 'a positive integer (required for 3-D q, k, v)', undefined);
    if (kvHeads === undefined) throw typeError('opts.kvNumHeads', 'a positive integer (required for 3-D q, k, v)', undefined);
    Hq = qHeads;
    Hkv = kvHeads;
    [B, Sq] = tq.dims as [number, number];
    if (tq.dims[2] % Hq !== 0) throw shapeError('q', `a last dim divisible by qNumHeads = ${Hq}`, `dims ${formatDims(tq.dims)}`);
    D = tq.dims[2] / Hq;
    Skv = tk.dims[1];
    if (tk.dims[0] !== B || tk.dims[2] !== Hkv * D) {
      throw shapeError('k', `dims [${B}, Skv, ${Hkv * D}] (kvNumHeads ${Hkv} x head size ${D} from q ${formatDims(tq.dims)})`, `dims ${formatDims(tk.dims)}`);
    }
    if (tv.dims[0] !== B || tv.dims[1] !== Skv || tv.dims[2] % Hkv !== 0) {
      throw shapeError('v', `dims [${B}, ${Skv}, kvNumHeads x Dv] with kvNumHeads = ${Hkv}`, `dims ${formatDims(tv.dims)}`);
    }
    Dv = tv.dims[2] / Hkv;
  }
  if (Hq % Hkv !== 0) {
    throw shapeError(rank === 4 ? 'k' : 'opts.kvNumHeads', `a kv head count that divides the ${Hq} query heads`, `${Hkv} kv heads`);
  }

  let pastKey: Float32Array | null = null, pastValue: Float32Array | null = null, past = 0;
  if ((o.pastKey === undefined) !== (o.pastValue === undefined)) {
    const [missing, given] = o.pastKey === undefined ? ['opts.pastKey', 'opts.pastValue'] : ['opts.pastValue', 'opts.pastKey'];
    throw typeError(missing, `a Tensor (it comes with ${given})`, undefined);
  }
  if (o.pastKey !== undefined) {
    const pk = checkTensor(o.pastKey, 'opts.pastKey'), pv = checkTensor(o.pastValue, 'opts.pastValue');
    const [pb, ph, pl, pd] = dims4(pk.dims, 'opts.pastKey', `4-D dims [${B}, ${Hkv}, past, ${D}]`);
    if (pb !== B || ph !== Hkv || pd !== D) throw shapeError('opts.pastKey', `dims [${B}, ${Hkv}, past, ${D}]`, `dims ${formatDims(pk.dims)}`);
    const [vb, vh, vl, vd] = dims4(pv.dims, 'opts.pastValue', `4-D dims [${B}, ${Hkv}, ${pl}, ${Dv}]`);
    if (vb !== B || vh !== Hkv || vl !== pl || vd !== Dv) {
      throw shapeError('opts.pastValue', `dims [${B}, ${Hkv}, ${pl}, ${Dv}] (past length from opts.pastKey)`, `dims ${formatDims(pv.dims)}`);
    }
    pastKey = pk.data;
    pastValue = pv.data;
    past = pl;
  }
  const total = past + Skv;
  if (total > MAX_KEYS) throw rangeError('k', `at most ${MAX_KEYS} keys in total (past + Skv)`, `${total}`);

  const mask = o.attnMask === undefined ? null : checkMask(o.attnMask, B, Hq, Sq, total);
  // The operator's spec: nonpad_kv_seqlen is for a preallocated cache passed as k/v, and is not to
  // be combined with past_key/past_value; no answer would agree with other implementations.
  if (o.nonpadKvSeqlen !== undefined && pastKey) {
    throw rangeError('opts.nonpadKvSeqlen', 'undefined when opts.pastKey/pastValue are given (ONNX Attention does not combine them)', 'both');
  }
  const kvValid = o.nonpadKvSeqlen === undefined ? null : checkNonpad(o.nonpadKvSeqlen, B, total);
  const causal = checkBoolean(o.isCausal, 'opts.isCausal', false);
  const scale = checkNumber(o.scale, 'opts.scale', 1 / Math.sqrt(D), -Infinity);
  const softcap = checkNumber(o.softcap, 'opts.softcap', 0, 0);
  const qkMode = checkMode(o.qkMatmulOutputMode);

  // ONNX: the causal diagonal is offset by the keys that precede the queries.
  let causalOffset: Int32Array | null = null;
  if (causal) {
    causalOffset = new Int32Array(B);
    for (let b = 0; b < B; b++) causalOffset[b] = pastKey ? past : kvValid ? kvValid[b] - Sq : 0;
  }

  const layout = rank === 4 ? strides4 : strides3;
  const qs = layout(Hq, Sq, D), ys = layout(Hq, Sq, Dv);
  const ks = pastKey ? strides4(Hkv, total, D) : layout(Hkv, Skv, D);
  const vs = pastKey ? strides4(Hkv, total, Dv) : layout(Hkv, Skv, Dv);
  const frozen = (dims: number[]) => Object.freeze(dims);
  const plan: AttentionPlan = Object.freeze({
    rank, B, Hq, Hkv, Sq, Skv, past, total, D, Dv, scale, softcap, causal, qkMode,
    q: qs, k: ks, v: vs, y: ys, kNew: layout(Hkv, Skv, D), vNew: layout(Hkv, Skv, Dv),
    mask: mask && Object.freeze(mask),
    kvValid,
    causalOffset,
    yDims: frozen(rank === 4 ? [B, Hq, Sq, Dv] : [B, Sq, Hq * Dv]),
    presentKeyDims: pastKey ? frozen([B, Hkv, total, D]) : null,
    presentValueDims: pastKey ? frozen([B, Hkv, total, Dv]) : null,
    qkDims: qkMode >= 0 ? frozen([B, Hq, Sq, total]) : null,
  });
  return { plan, q: tq.data, k: tk.data, v: tv.data, pastKey, pastValue };
}
