// The JS backend's KV cache: the same (B, Hkv, maxSeqLen, D) layout as native/core/kv_cache.cc in
// two arrays, Float32Array or, for a half-precision cache, Uint16Array bits rounded to nearest even
// as they are written (the bits the native cache stores), so the JS attention kernel reads it in
// place through the same strides. No validation here: the facade (lib/kv-cache.ts) checks every
// argument first.
import type { KVStore } from '../backend';
import { bf16BitsToF32, f16ToF32Table, f32ToBf16Bits, f32ToF16Bits } from '../gpt/safetensors';
import type { WeightDtype } from '../models/decoder-spec';
import type { KVArray } from './attention';

export class JsKVStore implements KVStore {
  keys: KVArray;
  values: KVArray;
  length = 0;

  constructor(readonly batch: number, readonly heads: number, readonly headDim: number, readonly maxSeqLen: number,
    readonly dtype: WeightDtype = 'F32') {
    const size = batch * heads * maxSeqLen * headDim;
    this.keys = dtype === 'F32' ? new Float32Array(size) : new Uint16Array(size);
    this.values = dtype === 'F32' ? new Float32Array(size) : new Uint16Array(size);
  }

  get disposed(): boolean {
    return this.keys.length === 0;
  }

  /**
   * Copies S positions of k/v, given as [B, S, heads * D] projections, into slots [pos, pos + S)
   * without changing length: the caller commits them once the step has succeeded.
   */
  write(pos: number, k: Float32Array, v: Float32Array, S: number): void {
    const { batch, heads, headDim: D, maxSeqLen } = this;
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < heads; h++) {
        for (let t = 0; t < S; t++) {
          const src = ((b * S + t) * heads + h) * D;
          const dst = ((b * heads + h) * maxSeqLen + pos + t) * D;
          this.put(this.keys, k, src, dst, D);
          this.put(this.values, v, src, dst, D);
        }
      }
    }
  }

  private put(to: KVArray, from: Float32Array, src: number, dst: number, n: number): void {
    if (to instanceof Float32Array) {
      to.set(from.subarray(src, src + n), dst);
    } else {
      const narrow = this.dtype === 'F16' ? f32ToF16Bits : f32ToBf16Bits;
      for (let i = 0; i < n; i++) to[dst + i] = narrow(from[src + i]);
    }
  }

  truncate(n: number): void {
    this.length = n;
  }

  /** Copies positions [0, length) into two contiguous float32 [B, heads, length, D] arrays. */
  read(keysOut: Float32Array, valuesOut: Float32Array): void {
    const { batch, heads, headDim: D, maxSeqLen, length } = this;
    for (let bh = 0; bh < batch * heads; bh++) {
      const from = bh * maxSeqLen * D, n = length * D;
      this.get(this.keys, keysOut, from, bh * n, n);
      this.get(this.values, valuesOut, from, bh * n, n);
    }
  }

  private get(from: KVArray, to: Float32Array, src: number, dst: number, n: number): void {
    if (from instanceof Float32Array) {
      to.set(from.subarray(src, src + n), dst);
    } else if (this.dtype === 'F16') {
      const table = f16ToF32Table();
      for (let i = 0; i < n; i++) to[dst + i] = table[from[src + i]];
    } else {
      for (let i = 0; i < n; i++) to[dst + i] = bf16BitsToF32(from[src + i]);
    }
  }

  dispose(): void {
    this.keys = this.dtype === 'F32' ? new Float32Array(0) : new Uint16Array(0);
    this.values = this.dtype === 'F32' ? new Float32Array(0) : new Uint16Array(0);
    this.length = 0;
  }
}
