// Where each checkpoint tensor lives in a model's decoder arrays (lib/models/decoder-spec.ts). An
// architecture allocates its matrices and vectors (SharedArrayBuffer-backed, so the native
// backend's pool jobs can read them) and places every named tensor in them: at a row offset (the
// q, k and v projections stacked into one qkv matrix, gate and up into one), transposed when the
// checkpoint stores [in, out] (GPT-2's Conv1D). `put` then writes a tensor where it belongs as it is
// read, converting to the model's precision, so loading holds one tensor besides the model, and
// `get` reads it back in the checkpoint's layout, as float32.
import { f32ToBf16Bits, f32ToF16Bits, f16ToF32Table, bf16BitsToF32, type StoredTensor } from '../gpt/safetensors';
import type { Tensor } from '../types';
import type { Matrix, WeightDtype } from './decoder-spec';

interface Place {
  /** The matrix's data, or a float32 vector. */
  readonly into: Float32Array | Uint16Array;
  readonly dtype: WeightDtype;
  /** First element of the tensor in `into`. */
  readonly offset: number;
  /** The tensor's dims as stored. */
  readonly dims: readonly number[];
  /** Stored [in, out] while `into` is [out, in]: element (i, j) goes to j * dims[0] + i. */
  readonly transpose: boolean;
}

const count = (dims: readonly number[]) => dims.reduce((p, d) => p * d, 1);

/** Float32 value i of a stored tensor. */
function reader(data: Float32Array | Uint16Array, dtype: WeightDtype): (i: number) => number {
  if (dtype === 'F32') return (i) => data[i];
  if (dtype === 'F16') {
    const table = f16ToF32Table();
    return (i) => table[data[i]];
  }
  return (i) => bf16BitsToF32(data[i]);
}

export class WeightLayout {
  private readonly places = new Map<string, Place>();
  private allocated = 0;

  constructor(readonly dtype: WeightDtype) {}

  /** A zeroed rows x cols matrix in the layout's dtype. */
  matrix(rows: number, cols: number): Matrix {
    const bytes = this.dtype === 'F32' ? 4 : 2;
    const buffer = new SharedArrayBuffer(rows * cols * bytes);
    this.allocated += buffer.byteLength;
    return { data: this.dtype === 'F32' ? new Float32Array(buffer) : new Uint16Array(buffer), dtype: this.dtype, rows, cols };
  }

  /** A zeroed float32 vector (norm weights, biases). */
  vector(n: number): Float32Array {
    this.allocated += n * 4;
    return new Float32Array(new SharedArrayBuffer(n * 4));
  }

  /** Bytes of every matrix and vector allocated: the model's weights, each held once. */
  get bytes(): number {
    return this.allocated;
  }

  /**
   * Tensor `name` of `dims` goes into `into` from row `row` on (a vector: from element `row`);
   * `transpose`: it is stored [in, out] and `into` is [out, in].
   */
  place(name: string, dims: readonly number[], into: Matrix | Float32Array, row = 0, transpose = false): void {
    const matrix = !(into instanceof Float32Array);
    this.places.set(name, {
      into: matrix ? into.data : into, dtype: matrix ? into.dtype : 'F32', offset: matrix ? row * into.cols : row, dims, transpose,
    });
  }

  has(name: string): boolean {
    return this.places.has(name);
  }

  /** Writes a stored tensor (checked against its place's dims by the caller) where it belongs. */
  put(name: string, tensor: StoredTensor | Tensor): void {
    const place = this.places.get(name)!;
    const srcDtype: WeightDtype = 'dtype' in tensor ? tensor.dtype : 'F32';
    const { into, offset, dims, transpose } = place;
    const n = count(dims);
    if (!transpose && srcDtype === place.dtype) {
      into.set(tensor.data.subarray(0, n) as never, offset);
      return;
    }
    const value = reader(tensor.data, srcDtype);
    const encode = place.dtype === 'F32' ? (v: number) => v : place.dtype === 'F16' ? f32ToF16Bits : f32ToBf16Bits;
    if (!transpose) {
      for (let i = 0; i < n; i++) into[offset + i] = encode(value(i));
      return;
    }
    const [rows, cols] = dims;
    if (srcDtype === place.dtype) {
      for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) into[offset + j * rows + i] = tensor.data[i * cols + j];
      return;
    }
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) into[offset + j * rows + i] = encode(value(i * cols + j));
  }

  /** Tensor `name` in its stored layout, as a float32 copy (changing it does not change the model). */
  get(name: string): Tensor {
    const { into, dtype, offset, dims, transpose } = this.places.get(name)!;
    const n = count(dims);
    if (dtype === 'F32' && !transpose) return { data: (into as Float32Array).slice(offset, offset + n), dims };
    const value = reader(into, dtype);
    const data = new Float32Array(n);
    if (!transpose) {
      for (let i = 0; i < n; i++) data[i] = value(offset + i);
    } else {
      const [rows, cols] = dims;
      for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) data[i * cols + j] = value(offset + j * rows + i);
    }
    return { data, dims };
  }
}
