// A safetensors reader and writer (https://github.com/huggingface/safetensors#format):
//   [8 bytes: little-endian u64 N][N bytes: JSON header][byte buffer]
// The header maps each tensor name to {dtype, shape, data_offsets: [begin, end]}, offsets relative
// to the byte buffer; "__metadata__" maps strings to strings. The reader never holds the file in
// memory: it reads the bounded header, validates every entry against the file size, and then
// reads each tensor with one positioned read into a buffer of its own, so tensor data at any
// byte offset (unaligned included) converts without copying the file.
import { promises as fsp } from 'node:fs';
import { endianness } from 'node:os';
import { rangeError, typeError } from '../errors';
import type { Tensor } from '../types';
import { checkTensor } from '../validate';

/** The same bound the reference implementation puts on the header, so a bad length cannot allocate gigabytes. */
export const MAX_HEADER_BYTES = 100_000_000;

/** Bytes per element of every byte-sized dtype in the format. */
const DTYPE_BYTES: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, F8_E8M0: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  I64: 8, U64: 8, F64: 8, C64: 8,
};

/** The dtypes that convert to float32 on read. */
export type FloatDtype = 'F32' | 'F16' | 'BF16' | 'F64';
/** A tensor in the precision it is stored in: Uint16Array bits for F16 and BF16. */
export interface StoredTensor {
  readonly data: Float32Array | Uint16Array;
  readonly dtype: SaveDtype;
  readonly dims: readonly number[];
}

/** The dtypes the writer stores. */
export type SaveDtype = 'F32' | 'F16' | 'BF16';

/** A malformed, truncated or unusable model file. `code` is stable; the message names the file and tensor. */
export class ModelFileError extends Error {
  readonly code = 'ERR_ATTN_MODEL_FILE';
  override readonly name = 'ModelFileError';
}

export interface TensorEntry {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  /** Absolute byte range in the file. */
  readonly begin: number;
  readonly end: number;
}

// Tensor data is read through typed-array views in host byte order; the format is little-endian.
const hostIsLittleEndian = endianness() === 'LE';

// ---------------------------------------------------------------------------------------------
// float16 / bfloat16 <-> float32, round to nearest, ties to even (IEEE 754 default rounding)

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** The binary16 bit pattern nearest to x (overflow to infinity, NaN stays NaN). */
export function f32ToF16Bits(x: number): number {
  scratchF32[0] = x;
  const bits = scratchU32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 112; // the binary16 biased exponent: (exp - 127) + 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal result: value = M * 2^(exp - 150) with M the 24-bit significand, and a binary16
    // subnormal is h * 2^-24, so h = M >> (14 - e). Below e = -10 even rounding up gives 0.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1), halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && (half & 1))) half++;
    return sign | half;
  }
  // A carry out of the mantissa bumps the exponent, and from the largest finite value gives infinity.
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1))) half++;
  return sign | half;
}

let f16Table: Float32Array | null = null;

/** Every binary16 value as float32, indexed by bit pattern (256 KiB, built on first use). */
/** Every binary16 pattern's float32 value. */
export function f16ToF32Table(): Float32Array {
  if (f16Table) return f16Table;
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1, exp = (h >>> 10) & 0x1f, mant = h & 0x3ff;
    const magnitude = exp === 0 ? mant * 2 ** -24 : exp === 31 ? (mant ? NaN : Infinity) : (1 + mant / 1024) * 2 ** (exp - 15);
    table[h] = sign * magnitude;
  }
  f16Table = table;
  return table;
}

export function f16BitsToF32(h: number): number {
  return f16ToF32Table()[h & 0xffff];
}

/** The bfloat16 bit pattern nearest to x (the top 16 bits of float32, rounded; NaN stays NaN). */
export function f32ToBf16Bits(x: number): number {
  scratchF32[0] = x;
  const bits = scratchU32[0];
  // Rounding would carry a NaN's payload into the exponent and could make it infinity.
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 0x40;
  return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
}

export function bf16BitsToF32(h: number): number {
  scratchU32[0] = (h & 0xffff) << 16;
  return scratchF32[0];
}

// ---------------------------------------------------------------------------------------------
// Reading

function fail(file: string, message: string): never {
  throw new ModelFileError(`Invalid safetensors file ${file}: ${message}`);
}

function isSize(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Validates the parsed header against the data size and returns its entries, sorted by offset. */
function parseEntries(file: string, header: unknown, dataStart: number, dataBytes: number): { entries: TensorEntry[]; metadata: Record<string, string> } {
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail(file, 'the header is not a JSON object');
  const entries: TensorEntry[] = [];
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(file, '__metadata__ is not an object');
      for (const [key, text] of Object.entries(value as Record<string, unknown>)) {
        if (typeof text !== 'string') fail(file, `__metadata__.${key} is not a string`);
        metadata[key] = text;
      }
      continue;
    }
    if (typeof value !== 'object' || value === null) fail(file, `tensor ${name}: the entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
    if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) fail(file, `tensor ${name}: unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every(isSize)) fail(file, `tensor ${name}: shape ${JSON.stringify(shape)} is not a list of sizes`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isSize) || offsets[0] > offsets[1]) {
      fail(file, `tensor ${name}: data_offsets ${JSON.stringify(offsets)} is not [begin, end] with begin <= end`);
    }
    const [begin, end] = offsets as number[];
    const bytes = (shape as number[]).reduce((p, d) => p * d, DTYPE_BYTES[dtype]);
    if (end - begin !== bytes) {
      fail(file, `tensor ${name}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes but ${dtype} ${JSON.stringify(shape)} needs ${bytes}`);
    }
    if (end > dataBytes) {
      fail(file, `tensor ${name}: data_offsets [${begin}, ${end}] run past the end of the data (${dataBytes} bytes; truncated file?)`);
    }
    entries.push({ name, dtype, shape: shape as number[], begin: dataStart + begin, end: dataStart + end });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < entries.length; i++) {
    if (entries[i].begin < entries[i - 1].end) fail(file, `tensors ${entries[i - 1].name} and ${entries[i].name} overlap`);
  }
  return { entries, metadata };
}

async function readExactly(handle: fsp.FileHandle, target: Uint8Array, position: number, file: string, what: string): Promise<void> {
  // A positioned read may return fewer bytes than asked (large reads, or a file shrinking under us).
  let done = 0;
  while (done < target.length) {
    const chunk = Math.min(target.length - done, 1 << 30);
    const { bytesRead } = await handle.read(target, done, chunk, position + done);
    if (bytesRead === 0) fail(file, `${what}: the file ends after ${position + done} bytes (truncated?)`);
    done += bytesRead;
  }
}

/** An open safetensors file: its validated header, and tensors read on demand. */
export class SafetensorsFile {
  private constructor(
    private handle: fsp.FileHandle | null,
    /** The path it was opened from. */
    readonly file: string,
    /** Every tensor in the file, by name. */
    readonly tensors: ReadonlyMap<string, TensorEntry>,
    /** The header's __metadata__ (empty when absent). */
    readonly metadata: Readonly<Record<string, string>>,
  ) {}

  /**
   * Opens a file and validates its header: the length bound, UTF-8 JSON, every dtype, shape and
   * byte range (inside the file, matching the shape, not overlapping another tensor).
   * @param file path to a .safetensors file
   * @example const st = await SafetensorsFile.open('model.safetensors'); const wte = await st.read('wte.weight');
   */
  static async open(file: string): Promise<SafetensorsFile> {
    checkPath(file);
    if (!hostIsLittleEndian) throw new ModelFileError('safetensors: big-endian hosts are not supported');
    const handle = await fsp.open(file, 'r');
    try {
      const { size } = await handle.stat();
      if (size < 8) fail(file, `the file has ${size} bytes, fewer than the 8-byte header length`);
      const prefix = new Uint8Array(8);
      await readExactly(handle, prefix, 0, file, 'header length');
      const headerBytes = Number(new DataView(prefix.buffer).getBigUint64(0, true));
      if (headerBytes > MAX_HEADER_BYTES) fail(file, `header length ${headerBytes} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
      if (headerBytes > size - 8) fail(file, `header length ${headerBytes} exceeds the file's remaining ${size - 8} bytes (truncated?)`);
      const raw = new Uint8Array(headerBytes);
      await readExactly(handle, raw, 8, file, 'header');
      let text: string;
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
      } catch {
        fail(file, 'the header is not valid UTF-8');
      }
      let header: unknown;
      try {
        header = JSON.parse(text);
      } catch (err) {
        fail(file, `the header is not valid JSON (${(err as Error).message})`);
      }
      const dataStart = 8 + headerBytes;
      const { entries, metadata } = parseEntries(file, header, dataStart, size - dataStart);
      return new SafetensorsFile(handle, file, new Map(entries.map((e) => [e.name, e])), metadata);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  /**
   * Reads one tensor, converting F32, F16, BF16 or F64 data to float32.
   * @param name the tensor's name in the header
   */
  async read(name: string): Promise<Tensor> {
    const entry = this.tensors.get(name);
    if (!entry) throw new ModelFileError(`${this.file}: tensor ${name} is missing`);
    if (!this.handle) throw new ModelFileError(`${this.file}: the file is closed`);
    const bytes = new Uint8Array(entry.end - entry.begin);
    await readExactly(this.handle, bytes, entry.begin, this.file, `tensor ${name}`);
    // `bytes` owns its buffer from offset 0, so any view on it is aligned whatever the file offset was.
    const count = bytes.length / DTYPE_BYTES[entry.dtype];
    let data: Float32Array;
    switch (entry.dtype) {
      case 'F32':
        data = new Float32Array(bytes.buffer, 0, count);
        break;
      case 'F16': {
        const table = f16ToF32Table(), halves = new Uint16Array(bytes.buffer, 0, count);
        data = new Float32Array(count);
        for (let i = 0; i < count; i++) data[i] = table[halves[i]];
        break;
      }
      case 'BF16': {
        const halves = new Uint16Array(bytes.buffer, 0, count), words = new Uint32Array(count);
        for (let i = 0; i < count; i++) words[i] = halves[i] << 16;
        data = new Float32Array(words.buffer);
        break;
      }
      case 'F64':
        data = Float32Array.from(new Float64Array(bytes.buffer, 0, count));
        break;
      default:
        throw new ModelFileError(`${this.file}: tensor ${name} has dtype ${entry.dtype}; expected F32, F16, BF16 or F64`);
    }
    return { data, dims: entry.shape };
  }

  /**
   * Reads one tensor in its own precision: F16 and BF16 as a Uint16Array of the bits, F32 as
   * float32, F64 converted to float32.
   */
  async readStored(name: string): Promise<StoredTensor> {
    const entry = this.tensors.get(name);
    if (entry?.dtype === 'F16' || entry?.dtype === 'BF16') {
      if (!this.handle) throw new ModelFileError(`${this.file}: the file is closed`);
      const halves = new Uint16Array((entry.end - entry.begin) / 2);
      await readExactly(this.handle, new Uint8Array(halves.buffer), entry.begin, this.file, `tensor ${name}`);
      return { data: halves, dtype: entry.dtype, dims: entry.shape };
    }
    const tensor = await this.read(name);
    return { data: tensor.data, dtype: 'F32', dims: tensor.dims };
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = null;
    await handle?.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

function checkPath(file: unknown): asserts file is string {
  if (typeof file !== 'string' || file.length === 0) throw typeError('file', 'a non-empty path string', file);
}

/** Snapshots the [name, Tensor] pairs once, so what is written is what was checked. */
function checkTensorList(tensors: unknown): [string, Tensor][] {
  if (typeof tensors !== 'object' || tensors === null || !(Symbol.iterator in tensors)) {
    throw typeError('tensors', 'an iterable of [name, Tensor] pairs', tensors);
  }
  const list: [string, Tensor][] = [];
  const seen = new Set<string>();
  for (const entry of tensors as Iterable<unknown>) {
    const where = `tensors[${list.length}]`;
    if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string') throw typeError(where, 'a [name: string, Tensor] pair', entry);
    const name = entry[0];
    if (name === '__metadata__' || seen.has(name)) throw rangeError(`${where}[0]`, 'a unique tensor name other than "__metadata__"', JSON.stringify(name));
    seen.add(name);
    list.push([name, checkTensor(entry[1], `${where}[1]`)]);
  }
  return list;
}

function encode(data: Float32Array, dtype: SaveDtype): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const halves = new Uint16Array(data.length);
  const convert = dtype === 'F16' ? f32ToF16Bits : f32ToBf16Bits;
  for (let i = 0; i < data.length; i++) halves[i] = convert(data[i]);
  return new Uint8Array(halves.buffer);
}

/**
 * Writes tensors to a safetensors file, in the given order, one tensor's bytes in memory at a time.
 * The header is padded with spaces to a multiple of 8 bytes so the data starts aligned.
 * @param file output path (overwritten)
 * @param tensors [name, tensor] pairs; data is float32 and stored as `dtype`
 * @param dtype 'F32', 'F16' or 'BF16' (rounded to nearest, ties to even)
 * @param metadata optional string -> string map stored as __metadata__
 */
export async function writeSafetensors(file: string, tensors: readonly (readonly [string, Tensor])[], dtype: SaveDtype = 'F32',
  metadata?: Record<string, string>): Promise<void> {
  checkPath(file);
  tensors = checkTensorList(tensors);
  if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16') throw typeError('dtype', "'F32', 'F16' or 'BF16'", dtype);
  if (metadata !== undefined && (typeof metadata !== 'object' || metadata === null || Object.values(metadata).some((v) => typeof v !== 'string'))) {
    throw typeError('metadata', 'an object of string values', metadata);
  }
  const width = dtype === 'F32' ? 4 : 2;
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  let offset = 0;
  for (const [name, tensor] of tensors) {
    const bytes = tensor.data.length * width;
    header[name] = { dtype, shape: tensor.dims, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length));
  const handle = await fsp.open(file, 'w');
  try {
    let position = 0;
    for (const chunk of [prefix, headerBytes, ...tensors.map(([, tensor]) => tensor)]) {
      const bytes = chunk instanceof Uint8Array ? chunk : encode(chunk.data, dtype);
      // A write may take fewer bytes than offered; keep going until the chunk is down.
      for (let done = 0; done < bytes.length;) {
        const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position);
        done += bytesWritten;
        position += bytesWritten;
      }
    }
  } finally {
    await handle.close();
  }
}
