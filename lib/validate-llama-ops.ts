// Checks for the Llama-family ops (lib/llama-ops.ts): rmsNorm, rope, silu, swiglu. Each turns its
// arguments into what a backend needs, with the argument errors of lib/errors.ts; rope's plan
// carries the inverse frequencies, already derived (float64, then rounded to float32 as
// transformers stores them).
import { formatDims, rangeError, shapeError, typeError } from './errors';
import type { Tensor } from './types';
import { checkAttached, checkOptions, checkTensor } from './validate';

/** Options of `rmsNorm()`. */
export interface RmsNormOptions {
  /** Added to the mean of squares before the square root. Default 1e-6 (HF's rms_norm_eps default). */
  eps?: number;
}

/** Llama 3's `rope_scaling` from a Hugging Face config.json (`rope_type: "llama3"`), keys as HF spells them. */
export interface Llama3RopeScaling {
  rope_type: 'llama3';
  factor: number;
  low_freq_factor: number;
  high_freq_factor: number;
  original_max_position_embeddings: number;
}

/** Options of `rope()`. */
export interface RopeOptions {
  /** The base of the inverse frequencies (HF `rope_theta`, e.g. 10000 or 500000). Required. */
  theta: number;
  /** Rotates the first rotaryDim dims of each head (even, <= D); the rest are copied. Default D. */
  rotaryDim?: number;
  /** Llama 3's frequency scaling; null or absent for none. */
  scaling?: Llama3RopeScaling | null;
}

export interface RmsNormCall {
  x: Tensor;
  weight: Float32Array;
  rows: number;
  width: number;
  eps: number;
}

/** What a backend needs to rotate x [B, S, H, D]. */
export interface RopePlan {
  readonly B: number;
  readonly S: number;
  readonly H: number;
  readonly D: number;
  readonly rotaryDim: number;
  /** rotaryDim / 2 inverse frequencies, float32 (the llama3 adjustment applied). */
  readonly invFreq: Float32Array;
  /** positions has length S, shared by every batch entry (else B * S). */
  readonly sharedPositions: boolean;
}

function checkNumber(value: unknown, name: string, expected: string, ok: (v: number) => boolean): number {
  if (typeof value !== 'number') throw typeError(name, expected, value);
  if (!ok(value)) throw rangeError(name, expected, String(value));
  return value;
}

const positiveFinite = (v: number) => Number.isFinite(v) && v > 0;

export function validateRmsNorm(x: unknown, weight: unknown, opts: unknown): RmsNormCall {
  const tx = checkTensor(x, 'x', true);
  const width = tx.dims[tx.dims.length - 1];
  if (width === undefined) throw shapeError('x', 'dims of rank >= 1', 'dims []');
  const tw = checkTensor(weight, 'weight', true);
  if (tw.dims.length !== 1 || tw.dims[0] !== width) {
    throw shapeError('weight', `dims [${width}] (the last dim of x)`, `dims ${formatDims(tw.dims)}`);
  }
  const o = checkOptions(opts, 'opts', ['eps']);
  const eps = o.eps === undefined ? 1e-6 : checkNumber(o.eps, 'opts.eps', 'a finite number >= 0', (v) => Number.isFinite(v) && v >= 0);
  return { x: tx, weight: tw.data, rows: tx.data.length / width, width, eps };
}

const SCALING_KEYS = ['rope_type', 'factor', 'low_freq_factor', 'high_freq_factor', 'original_max_position_embeddings'] as const;

/** Llama 3's adjustment, in float64, exactly as transformers' _compute_llama3_parameters. */
function llama3Scaling(scaling: unknown): (invFreq: number) => number {
  const s = checkOptions(scaling, 'opts.scaling', SCALING_KEYS);
  if (s.rope_type !== 'llama3') {
    throw s.rope_type === undefined || typeof s.rope_type === 'string'
      ? rangeError('opts.scaling.rope_type', "'llama3' (the only rope scaling supported)", s.rope_type === undefined ? 'undefined' : JSON.stringify(s.rope_type))
      : typeError('opts.scaling.rope_type', "the string 'llama3'", s.rope_type);
  }
  const factor = checkNumber(s.factor, 'opts.scaling.factor', 'a finite number > 0', positiveFinite);
  const low = checkNumber(s.low_freq_factor, 'opts.scaling.low_freq_factor', 'a finite number > 0', positiveFinite);
  const high = checkNumber(s.high_freq_factor, 'opts.scaling.high_freq_factor', `a finite number > low_freq_factor (${low})`,
    (v) => Number.isFinite(v) && v > low);
  const oldContext = checkNumber(s.original_max_position_embeddings, 'opts.scaling.original_max_position_embeddings',
    'a positive integer', (v) => Number.isSafeInteger(v) && v > 0);
  const lowFreqWavelen = oldContext / low;
  const highFreqWavelen = oldContext / high;
  return (invFreq) => {
    const wavelen = (2 * Math.PI) / invFreq;
    if (wavelen < highFreqWavelen) return invFreq; // high frequencies: unchanged
    if (wavelen > lowFreqWavelen) return invFreq / factor; // low frequencies: scaled down
    const smooth = (oldContext / wavelen - low) / (high - low); // in between: interpolated
    return ((1 - smooth) * invFreq) / factor + smooth * invFreq;
  };
}

function checkInt32Array(value: unknown, name: string): Int32Array {
  // The tag check keeps an Int32Array from another realm (vm context, worker) an Int32Array.
  if (!(value instanceof Int32Array) && !(ArrayBuffer.isView(value) && Object.prototype.toString.call(value) === '[object Int32Array]')) {
    throw typeError(name, 'Int32Array', value);
  }
  checkAttached(value, name);
  return value as Int32Array;
}

export function validateRope(x: unknown, positions: unknown, opts: unknown): { x: Tensor; positions: Int32Array; plan: RopePlan } {
  const tx = checkTensor(x, 'x');
  if (tx.dims.length !== 4) throw shapeError('x', 'dims [B, S, H, D] (rank 4)', `dims ${formatDims(tx.dims)}`);
  const [B, S, H, D] = tx.dims;
  const pos = checkInt32Array(positions, 'positions');
  if (pos.length !== B * S && pos.length !== S) {
    throw shapeError('positions', `an Int32Array of length B*S = ${B * S} or S = ${S} (x has dims ${formatDims(tx.dims)})`, `length ${pos.length}`);
  }
  for (let i = 0; i < pos.length; i++) {
    if (pos[i] < 0) throw rangeError('positions', 'non-negative positions', `${pos[i]} at index ${i}`);
  }
  if (opts === undefined) throw typeError('opts', 'an options object with theta', opts);
  const o = checkOptions(opts, 'opts', ['theta', 'rotaryDim', 'scaling']);
  const theta = checkNumber(o.theta, 'opts.theta', 'a finite number > 0', positiveFinite);
  const rotaryDim = o.rotaryDim === undefined ? D
    : checkNumber(o.rotaryDim, 'opts.rotaryDim', `an even integer in [2, ${D}] (the head dim, the last dim of x)`,
      (v) => Number.isInteger(v) && v >= 2 && v <= D && v % 2 === 0);
  if (rotaryDim % 2 !== 0) {
    throw rangeError('opts.rotaryDim', `an even rotary dim (the default is the head dim, the last dim of x, which is odd: ${D})`, 'undefined');
  }
  const invFreq = inverseFrequencies(theta, rotaryDim, o.scaling);
  return { x: tx, positions: pos, plan: { B, S, H, D, rotaryDim, invFreq, sharedPositions: pos.length !== B * S } };
}

/**
 * The rotary inverse frequencies 1 / theta^(2i / rotaryDim) in float64, llama3-adjusted when
 * `scaling` is given (checked as opts.scaling), then rounded to float32 (the dtype of HF's inv_freq).
 */
export function inverseFrequencies(theta: number, rotaryDim: number, scaling: unknown): Float32Array {
  const adjust = scaling === undefined || scaling === null ? null : llama3Scaling(scaling);
  const half = rotaryDim / 2;
  const invFreq = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const f = 1 / Math.pow(theta, (2 * i) / rotaryDim);
    invFreq[i] = adjust ? adjust(f) : f;
  }
  return invFreq;
}

/** silu's x: a Tensor, or a Float32Array as 1-D. */
export function validateSilu(x: unknown): Tensor {
  return checkTensor(x, 'x', true);
}

/** swiglu's gate and up: Tensors (or Float32Arrays as 1-D) of the same dims. */
export function validateSwiglu(gate: unknown, up: unknown): { gate: Tensor; up: Tensor } {
  const tg = checkTensor(gate, 'gate', true);
  const tu = checkTensor(up, 'up', true);
  if (tu.dims.length !== tg.dims.length || tu.dims.some((d, i) => d !== tg.dims[i])) {
    throw shapeError('up', `dims ${formatDims(tg.dims)} (the dims of gate)`, `dims ${formatDims(tu.dims)}`);
  }
  return { gate: tg, up: tu };
}
