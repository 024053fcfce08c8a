// The safetensors reader and writer: exact F16/BF16 rounding against brute-force oracles, round
// trips, files laid out by hand (unaligned offsets, other dtypes, metadata) and one test per
// kind of corruption, each asserting the message names what is wrong.
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as st from '../dist/gpt/safetensors.js';
import { api } from './helpers/backends';
import { randomArray, rng } from './helpers/oracle';

let dir: string;
beforeAll(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'attn-safetensors-'));
});
afterAll(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

let fileCount = 0;
/** Writes [u64 header length][header][data] with full control over each part. */
async function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0), opts: { headerLength?: bigint; headerText?: Uint8Array } = {}): Promise<string> {
  const text = opts.headerText ?? new TextEncoder().encode(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(opts.headerLength ?? BigInt(text.length));
  const file = path.join(dir, `raw-${fileCount++}.safetensors`);
  await fsp.writeFile(file, Buffer.concat([prefix, text, data]));
  return file;
}

function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

/** Every finite binary16 value, decoded independently of the library (for the nearest-value oracle). */
function f16Values(): { bits: number; value: number }[] {
  const list: { bits: number; value: number }[] = [];
  for (let bits = 0; bits < 0x7c00; bits++) {
    const exp = bits >> 10, mant = bits & 0x3ff;
    list.push({ bits, value: exp === 0 ? mant * 2 ** -24 : (1024 + mant) * 2 ** (exp - 25) });
  }
  return list;
}

/** Nearest binary16 by search over all finite values, ties to the even pattern; beyond 65520 is infinity. */
function f16Oracle(x: number, table: { bits: number; value: number }[]): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00;
  let lo = 0, hi = table.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (table[mid].value <= a) lo = mid; else hi = mid;
  }
  const dl = a - table[lo].value, dh = table[hi].value - a;
  const pick = dl < dh ? lo : dh < dl ? hi : (table[lo].bits & 1 ? hi : lo);
  return sign | table[pick].bits;
}

describe('float16 / bfloat16 conversion', () => {
  it('rounds float32 to the nearest binary16, ties to even (oracle: search over all 31744 finite values)', () => {
    const table = f16Values();
    const next = rng(7);
    const samples: number[] = [0, -0, 1, -1, 65504, 65519.99, 65520, 1e9, 2 ** -24, 2 ** -25, 2 ** -25 * 1.0000001, 2 ** -26, 3 * 2 ** -25, 6.1e-5];
    for (let i = 0; i < 20000; i++) samples.push(Math.fround((next() * 2 - 1) * 2 ** (next() * 40 - 26)));
    // Exact midpoints between neighbours exercise ties-to-even in normal and subnormal ranges.
    for (let i = 0; i < 2000; i++) {
      const j = Math.floor(next() * (table.length - 1));
      samples.push(Math.fround((table[j].value + table[j + 1].value) / 2));
    }
    for (const x of samples) expect(st.f32ToF16Bits(x), `x = ${x}`).toBe(f16Oracle(Math.fround(x), table));
  });

  it('decodes every binary16 pattern and re-encodes it unchanged', () => {
    for (let bits = 0; bits < 65536; bits++) {
      const value = st.f16BitsToF32(bits);
      if ((bits & 0x7c00) === 0x7c00 && (bits & 0x3ff)) {
        expect(value).toBeNaN();
        expect(Number.isNaN(st.f16BitsToF32(st.f32ToF16Bits(value)))).toBe(true);
      } else {
        expect(st.f32ToF16Bits(value), `bits ${bits.toString(16)}`).toBe(bits);
      }
    }
    expect(st.f16BitsToF32(0x3c00)).toBe(1);
    expect(st.f16BitsToF32(0xfc00)).toBe(-Infinity);
  });

  it('rounds float32 to the nearest bfloat16, ties to even (oracle: float64 distance to both neighbours)', () => {
    const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
    const next = rng(11);
    for (let i = 0; i < 20000; i++) {
      u32[0] = Math.floor(next() * 2 ** 32);
      if ((u32[0] & 0x7f800000) === 0x7f800000) continue;
      const x = f32[0];
      const lower = u32[0] & 0xffff0000;
      u32[0] = lower;
      const a = f32[0];
      u32[0] = lower + 0x10000;
      // Above the largest bfloat16 the upper neighbour is 2^128 (infinity once rounded), as IEEE rounding has it.
      const b = Number.isFinite(f32[0]) ? f32[0] : Math.sign(x) * 2 ** 128;
      const da = Math.abs(x - a), db = Math.abs(b - x);
      const expected = (da < db ? lower : db < da ? lower + 0x10000 : ((lower >>> 16) & 1 ? lower + 0x10000 : lower)) >>> 16;
      expect(st.f32ToBf16Bits(x), `x = ${x}`).toBe(expected);
    }
    expect(st.f32ToBf16Bits(Number.MAX_VALUE)).toBe(0x7f80);
    expect(Number.isNaN(st.bf16BitsToF32(st.f32ToBf16Bits(NaN)))).toBe(true);
    expect(st.bf16BitsToF32(0x3f80)).toBe(1);
  });
});

describe('SafetensorsFile', () => {
  it.each(['F32', 'F16', 'BF16'] as const)('writes and reads back %s tensors (values rounded the same way)', async (dtype) => {
    const a = randomArray(6 * 5, 1), b = randomArray(7, 2);
    const file = path.join(dir, `round-${dtype}.safetensors`);
    await api.writeSafetensors(file, [['a', { data: a, dims: [6, 5] }], ['b', { data: b, dims: [7] }]], dtype, { format: 'pt' });
    const f = await api.SafetensorsFile.open(file);
    expect(f.metadata).toEqual({ format: 'pt' });
    expect([...f.tensors.keys()].sort()).toEqual(['a', 'b']);
    const round = (x: number): number =>
      dtype === 'F32' ? Math.fround(x) : dtype === 'F16' ? st.f16BitsToF32(st.f32ToF16Bits(x)) : st.bf16BitsToF32(st.f32ToBf16Bits(x));
    const ra = await f.read('a');
    expect(ra.dims).toEqual([6, 5]);
    expect(Array.from(ra.data)).toEqual(Array.from(a, round));
    expect(Array.from((await f.read('b')).data)).toEqual(Array.from(b, round));
    await f.close();
    // The data section starts 8-byte aligned: the header is padded with spaces.
    const bytes = await fsp.readFile(file);
    expect((8 + Number(bytes.readBigUInt64LE(0))) % 8).toBe(0);
  });

  it('reads tensors at unaligned offsets, F64 and empty tensors, and skips other dtypes until asked', async () => {
    const data = new Uint8Array(3 + 8 + 8 + 8);
    data.set([1, 2, 3], 0);
    data.set(f32Bytes([1.5, -2.25]), 3);
    new DataView(data.buffer).setFloat64(11, Math.PI, true);
    new DataView(data.buffer).setBigInt64(19, 42n, true);
    const file = await rawFile({
      __metadata__: { note: 'hand-made' },
      bytes: { dtype: 'U8', shape: [3], data_offsets: [0, 3] },
      x: { dtype: 'F32', shape: [2], data_offsets: [3, 11] },
      pi: { dtype: 'F64', shape: [], data_offsets: [11, 19] },
      n: { dtype: 'I64', shape: [1], data_offsets: [19, 27] },
      empty: { dtype: 'F32', shape: [0, 4], data_offsets: [27, 27] },
    }, data);
    const f = await api.SafetensorsFile.open(file);
    expect(Array.from((await f.read('x')).data)).toEqual([1.5, -2.25]);
    expect((await f.read('pi')).data[0]).toBe(Math.fround(Math.PI));
    expect((await f.read('empty')).data.length).toBe(0);
    await expect(f.read('n')).rejects.toThrow(/tensor n has dtype I64; expected F32, F16, BF16 or F64/);
    await expect(f.read('nope')).rejects.toThrow(/tensor nope is missing/);
    expect(f.tensors.get('x')).toMatchObject({ dtype: 'F32', shape: [2] });
    await f.close();
    await expect(f.read('x')).rejects.toThrow(/closed/);
  });

  const good = { w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } };
  const corrupt: [string, () => Promise<string>, RegExp][] = [
    ['a file shorter than 8 bytes', async () => {
      const file = path.join(dir, 'tiny.safetensors');
      await fsp.writeFile(file, Buffer.from([1, 2, 3]));
      return file;
    }, /has 3 bytes, fewer than the 8-byte header length/],
    ['a header length past the end of the file', () => rawFile(good, new Uint8Array(16), { headerLength: 10_000n }), /header length 10000 exceeds the file's remaining \d+ bytes \(truncated\?\)/],
    ['a header length over the limit', () => rawFile(good, new Uint8Array(16), { headerLength: 2n ** 40n }), /header length 1099511627776 exceeds the 100000000-byte limit/],
    ['a header that is not JSON', () => rawFile(null, new Uint8Array(16), { headerText: new TextEncoder().encode('{"w": [1, 2') }), /the header is not valid JSON/],
    ['a header that is not UTF-8', () => rawFile(null, new Uint8Array(0), { headerText: Uint8Array.from([0x7b, 0xff, 0x7d]) }), /not valid UTF-8/],
    ['a header that is a JSON array', () => rawFile([1, 2]), /the header is not a JSON object/],
    ['an unknown dtype', () => rawFile({ w: { dtype: 'F12', shape: [2], data_offsets: [0, 3] } }, new Uint8Array(3)), /tensor w: unknown dtype "F12"/],
    ['a negative dim', () => rawFile({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)), /tensor w: shape \[-1\] is not a list of sizes/],
    ['offsets backwards', () => rawFile({ w: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } }, new Uint8Array(8)), /tensor w: data_offsets \[8,4\] is not \[begin, end\]/],
    ['offsets that disagree with the shape', () => rawFile({ w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 12] } }, new Uint8Array(16)), /tensor w: data_offsets \[0, 12\] hold 12 bytes but F32 \[2,2\] needs 16/],
    ['offsets past the end of the data (truncated file)', () => rawFile(good, new Uint8Array(15)), /tensor w: data_offsets \[0, 16\] run past the end of the data \(15 bytes; truncated file\?\)/],
    ['overlapping tensors', () => rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, new Uint8Array(12)), /tensors a and b overlap/],
    ['metadata that is not strings', () => rawFile({ __metadata__: { n: 1 } }), /__metadata__\.n is not a string/],
  ];
  it.each(corrupt)('rejects %s with a ModelFileError naming the problem', async (_what, make, message) => {
    const file = await make();
    const err = await api.SafetensorsFile.open(file).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(api.ModelFileError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).toContain(file);
    expect((err as { code: string }).code).toBe('ERR_ATTN_MODEL_FILE');
  });

  it('reports a missing file with the system error', async () => {
    await expect(api.SafetensorsFile.open(path.join(dir, 'absent.safetensors'))).rejects.toThrow(/ENOENT/);
  });
});
