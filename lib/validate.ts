// The one validation layer. It runs before either backend, throws the argument errors, and
// returns plans: the sizes a backend needs, already derived, so no backend re-derives shapes.
import { describe, formatDims, rangeError, shapeError, typeError } from './errors';
import type { WeightDtype } from './models/decoder-spec';
import type { MatmulOptions, Tensor } from './types';

const MAX_ELEMENTS = Number.MAX_SAFE_INTEGER;

export function isFloat32Array(value: unknown): value is Float32Array {
  // instanceof is the fast path; the tag check keeps a Float32Array from a vm context or worker
  // (another realm) a Float32Array.
  return value instanceof Float32Array || (ArrayBuffer.isView(value) && Object.prototype.toString.call(value) === '[object Float32Array]');
}

/** Throws unless `value` is a Float32Array whose buffer is usable (not detached). */
export function checkFloat32Array(value: unknown, name: string): Float32Array {
  if (!isFloat32Array(value)) throw typeError(name, 'Float32Array', value);
  checkAttached(value, name);
  return value;
}

function isDetached(view: ArrayBufferView): boolean {
  // A detached view reports byteLength 0; only then is the (rarer) probe of its buffer needed.
  if (view.byteLength !== 0) return false;
  const buffer = view.buffer as ArrayBuffer & { detached?: boolean };
  if (typeof buffer.detached === 'boolean') return buffer.detached;
  try {
    new Uint8Array(buffer);
    return false;
  } catch {
    return true;
  }
}

export function checkAttached(data: unknown, name: string): void {
  if (ArrayBuffer.isView(data) && isDetached(data)) {
    // typeError() describes a value; this one needs "detached" in what was received, so the same
    // message and code are spelled out here.
    const message = `Expected a ${data.constructor.name} on a live (not detached) ArrayBuffer for ${name} but received ${describe(data)} on a detached ArrayBuffer`;
    throw Object.assign(new TypeError(message), { code: 'ERR_ATTN_INVALID_TYPE' as const });
  }
}


/** Array-likes (dims) are copied so a getter or a later change cannot differ from what was checked. */
export function snapshot(value: unknown): unknown {
  return Array.isArray(value) || (ArrayBuffer.isView(value) && !(value instanceof DataView)) ? Array.from(value as ArrayLike<unknown>) : value;
}

/** Checks dims: an array of positive safe integers whose product is a safe integer. Returns the product. */
export function checkDims(dims: unknown, name: string): number {
  if (!Array.isArray(dims) && !(ArrayBuffer.isView(dims) && !(dims instanceof DataView))) {
    throw typeError(`${name}.dims`, 'an array of positive integers', dims);
  }
  const list = dims as ArrayLike<number>;
  let size = 1;
  for (let i = 0; i < list.length; i++) {
    const d = list[i];
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 1) {
      throw rangeError(`${name}.dims`, 'positive integers', `${formatDims(Array.from(list, String) as unknown as number[])} (dim ${i} is ${String(d)})`);
    }
    size *= d;
    if (size > MAX_ELEMENTS) throw rangeError(`${name}.dims`, `a total size of at most 2^53 - 1 elements`, formatDims(Array.from(list)));
  }
  return size;
}

/**
 * Checks that `value` is a Tensor ({data: Float32Array, dims}) with data.length equal to the
 * product of dims, and returns a snapshot: `data` and `dims` are read once and dims is copied into
 * a plain array, so a getter or a later change to the caller's dims cannot differ from what was
 * checked. A bare Float32Array is accepted as a 1-D tensor when `allowBareArray`.
 */
export function checkTensor(value: unknown, name: string, allowBareArray = false): Tensor {
  if (allowBareArray && isFloat32Array(value)) return { data: checkFloat32Array(value, name), dims: [value.length] };
  if (typeof value !== 'object' || value === null || !('data' in value) || !('dims' in value)) {
    throw typeError(name, allowBareArray ? 'a Tensor {data: Float32Array, dims} or a Float32Array' : 'a Tensor {data: Float32Array, dims}', value);
  }
  const data = (value as { data: unknown }).data;
  const rawDims = (value as { dims: unknown }).dims;
  if (!isFloat32Array(data)) throw typeError(`${name}.data`, 'Float32Array', data);
  // A detached typed-array dims cannot even be read (Array.from throws V8's own TypeError).
  checkAttached(data, `${name}.data`);
  checkAttached(rawDims, `${name}.dims`);
  const dims = snapshot(rawDims);
  const size = checkDims(dims, name);
  if (data.length !== size) {
    throw shapeError(name, `data of length ${size} (the product of dims ${formatDims(dims as number[])})`, `data of length ${data.length}`);
  }
  return { data, dims: dims as number[] };
}

/** Throws unless `opts` is undefined or a plain object with only the given keys. */
export function checkOptions(opts: unknown, name: string, allowed: readonly string[]): Record<string, unknown> {
  if (opts === undefined) return {};
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) throw typeError(name, 'an options object', opts);
  for (const key of Object.keys(opts)) {
    if (!allowed.includes(key)) throw rangeError(name, `only the options ${allowed.join(', ')}`, `unknown option ${JSON.stringify(key)}`);
  }
  return opts as Record<string, unknown>;
}

/** Like checkOptions, for a required argument (a layer's config or weights): undefined is a TypeError. */
export function requiredObject(value: unknown, name: string, allowed: readonly string[]): Record<string, unknown> {
  if (value === undefined) throw typeError(name, `an object with ${allowed.join(', ')}`, value);
  return checkOptions(value, name, allowed);
}

export function checkBoolean(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw typeError(name, 'a boolean', value);
  return value;
}

/** Throws unless `out` is a Float32Array of exactly `length` elements that shares no memory with `inputs`. */
export function checkOut(out: unknown, length: number, dims: readonly number[], inputs: readonly Float32Array[]): Float32Array {
  const array = checkFloat32Array(out, 'opts.out');
  if (array.length !== length) throw shapeError('opts.out', `length ${length} (output dims ${formatDims(dims)})`, `length ${array.length}`);
  for (const input of inputs) {
    if (input.buffer === array.buffer && input.byteOffset < array.byteOffset + array.byteLength && array.byteOffset < input.byteOffset + input.byteLength) {
      throw rangeError('opts.out', 'an array that does not overlap the inputs', 'an array that overlaps an input');
    }
  }
  return array;
}

// ---------------------------------------------------------------------------------------------
// dot / matmul / linear

export function validateDot(a: unknown, b: unknown): void {
  checkFloat32Array(a, 'a');
  checkFloat32Array(b, 'b');
  if ((a as Float32Array).length !== (b as Float32Array).length) {
    throw shapeError('b', `a Float32Array of length ${(a as Float32Array).length} (the length of a)`, `length ${(b as Float32Array).length}`);
  }
}

export const MAX_BATCH_RANK = 8;

/** What a backend needs to run a (batched, broadcast) matmul. */
export interface MatmulPlan {
  readonly m: number;
  readonly k: number;
  readonly n: number;
  readonly transA: boolean;
  readonly transB: boolean;
  /** Output leading (batch) dims after broadcasting; empty for a single product. */
  readonly batchDims: readonly number[];
  /** Element stride of each batch dim in a and b (0 where that operand broadcasts). */
  readonly aBatchStrides: readonly number[];
  readonly bBatchStrides: readonly number[];
  readonly batch: number;
  readonly outDims: readonly number[];
  readonly outSize: number;
}

const NO_DIMS: readonly number[] = Object.freeze([]);

function batchStrides(dims: readonly number[], matrixSize: number, outBatch: readonly number[]): number[] {
  const strides = new Array<number>(outBatch.length).fill(0);
  let stride = matrixSize;
  for (let i = dims.length - 1, o = outBatch.length - 1; i >= 0; i--, o--) {
    strides[o] = dims[i] === 1 ? 0 : stride;
    stride *= dims[i];
  }
  return strides;
}

// e.g. "Expected dims [..., 3, n] (k = 3 from the last dim of a with dims [2, 3]) for b but received dims [4, 2]"
function kMismatch(aDims: readonly number[], bDims: readonly number[], transA: boolean, transB: boolean, k: number): RangeError {
  const expected = bDims.length === 1 ? `[${k}]` : transB ? `[..., n, ${k}]` : `[..., ${k}, n]`;
  const from = aDims.length === 1 ? 'the length' : transA ? 'the second-to-last dim (transA)' : 'the last dim';
  return shapeError('b', `dims ${expected} (k = ${k} from ${from} of a with dims ${formatDims(aDims)})`,
    `dims ${formatDims(bDims)}${transB ? ' with transB' : ''}`);
}

/**
 * numpy/torch.matmul semantics: 1-D operands are promoted (a -> [1, k], b -> [k, 1]) and the
 * promoted dim is dropped from the result; leading dims broadcast. transA/transB swap the last
 * two dims of an operand of rank >= 2 (a 1-D operand has nothing to swap).
 */
export function planMatmul(aDims: readonly number[], bDims: readonly number[], transA: boolean, transB: boolean): MatmulPlan {
  const ar = aDims.length, br = bDims.length;
  if (ar === 0) throw shapeError('a', 'dims of rank >= 1', 'dims []');
  if (br === 0) throw shapeError('b', 'dims of rank >= 1', 'dims []');
  const aVec = ar === 1, bVec = br === 1;
  const tA = transA && !aVec, tB = transB && !bVec;
  const m = aVec ? 1 : aDims[tA ? ar - 1 : ar - 2];
  const k = aDims[aVec ? 0 : tA ? ar - 2 : ar - 1];
  const n = bVec ? 1 : bDims[tB ? br - 2 : br - 1];
  if (bDims[bVec ? 0 : tB ? br - 1 : br - 2] !== k) throw kMismatch(aDims, bDims, tA, tB, k);

  // The common 2-D (or 1-D) case allocates no batch bookkeeping.
  let batchDims = NO_DIMS, aBatchStrides = NO_DIMS, bBatchStrides = NO_DIMS;
  let batch = 1;
  if (ar > 2 || br > 2) {
    const aBatch = aVec ? NO_DIMS : aDims.slice(0, ar - 2);
    const bBatch = bVec ? NO_DIMS : bDims.slice(0, br - 2);
    const rank = Math.max(aBatch.length, bBatch.length);
    if (rank > MAX_BATCH_RANK) {
      throw rangeError(aBatch.length >= bBatch.length ? 'a' : 'b', `at most ${MAX_BATCH_RANK} batch dims`, `${rank}`);
    }
    const dims: number[] = [];
    for (let i = 0; i < rank; i++) {
      const da = aBatch[aBatch.length - rank + i] ?? 1;
      const db = bBatch[bBatch.length - rank + i] ?? 1;
      if (da !== db && da !== 1 && db !== 1) {
        throw shapeError('b', `batch dims that broadcast with ${formatDims(aBatch)} (the batch dims of a with dims ${formatDims(aDims)})`,
          `dims ${formatDims(bDims)} (batch dims ${formatDims(bBatch)})`);
      }
      dims.push(Math.max(da, db));
      batch *= dims[i];
    }
    batchDims = dims;
    aBatchStrides = batchStrides(aBatch, m * k, dims);
    bBatchStrides = batchStrides(bBatch, k * n, dims);
  }
  const outDims = batchDims.slice();
  if (!aVec) outDims.push(m);
  if (!bVec) outDims.push(n);
  const outSize = batch * m * n;
  if (outSize > MAX_ELEMENTS) throw rangeError('the output', 'at most 2^53 - 1 elements', `dims ${formatDims(outDims)}`);
  return { m, k, n, transA: tA, transB: tB, batchDims, aBatchStrides, bBatchStrides, batch, outDims, outSize };
}

export interface ValidatedMatmul {
  plan: MatmulPlan;
  a: Tensor;
  b: Tensor;
  bias: Float32Array | null;
  out: Float32Array | undefined;
}

const MATMUL_OPTIONS = ['transA', 'transB', 'bias', 'out'] as const;
const NO_OPTIONS: Readonly<Record<string, unknown>> = Object.freeze({});

export function validateMatmul(a: unknown, b: unknown, opts: MatmulOptions | undefined): ValidatedMatmul {
  const ta = checkTensor(a, 'a', true);
  const tb = checkTensor(b, 'b', true);
  const o: Record<string, unknown> = opts === undefined ? NO_OPTIONS : checkOptions(opts, 'opts', MATMUL_OPTIONS);
  const plan = planMatmul(ta.dims, tb.dims, checkBoolean(o.transA, 'opts.transA', false), checkBoolean(o.transB, 'opts.transB', false));
  const bias = o.bias === undefined ? null : checkBias(o.bias, 'opts.bias', plan.n);
  const out = o.out === undefined ? undefined : checkOut(o.out, plan.outSize, plan.outDims, bias ? [ta.data, tb.data, bias] : [ta.data, tb.data]);
  return { plan, a: ta, b: tb, bias, out };
}

export function checkBias(value: unknown, name: string, n: number): Float32Array {
  const bias = checkTensor(value, name, true);
  if (bias.dims.length !== 1 || bias.dims[0] !== n) throw shapeError(name, `dims [${n}] (the last output dim)`, `dims ${formatDims(bias.dims)}`);
  return bias.data;
}

export function validateLinear(x: unknown, w: unknown, b: unknown): ValidatedMatmul {
  const tx = checkTensor(x, 'x', true);
  const tw = checkTensor(w, 'w');
  if (tw.dims.length !== 2) throw shapeError('w', 'dims [in, out]', `dims ${formatDims(tw.dims)}`);
  const inFeatures = tx.dims[tx.dims.length - 1];
  if (tw.dims[0] !== inFeatures) {
    throw shapeError('w', `dims [${inFeatures}, out] (in = ${inFeatures}, the last dim of x)`, `dims ${formatDims(tw.dims)} (x has dims ${formatDims(tx.dims)})`);
  }
  const bias = b === undefined || b === null ? null : checkBias(b, 'b', tw.dims[1]);
  // x of any rank >= 1 is a stack of rows: one 2-D product, no batch broadcasting needed.
  const rows = tx.data.length / inFeatures;
  const plan = planMatmul([rows, inFeatures], tw.dims, false, false);
  const outDims = [...tx.dims.slice(0, -1), tw.dims[1]];
  return { plan: { ...plan, outDims }, a: tx, b: tw, bias, out: undefined };
}

/** Checks a dtype option (undefined stays undefined). */
export function dtypeOption(value: unknown, name: string): WeightDtype | undefined {
  if (value === undefined || value === 'F32' || value === 'F16' || value === 'BF16') return value;
  throw typeof value === 'string' ? rangeError(name, "'F32', 'F16' or 'BF16'", JSON.stringify(value)) : typeError(name, "'F32', 'F16' or 'BF16'", value);
}
