// The JS backend's KV cache: the same (B, Hkv, maxSeqLen, D) layout as native/core/kv_cache.cc in
// two Float32Arrays, so the JS attention kernel reads it in place through the same strides.
// No validation here: the facade (lib/kv-cache.ts) checks every argument first.
import type { KVStore } from '../backend';

export class JsKVStore implements KVStore {
  keys: Float32Array;
  values: Float32Array;
  length = 0;

  constructor(readonly batch: number, readonly heads: number, readonly headDim: number, readonly maxSeqLen: number) {
    const size = batch * heads * maxSeqLen * headDim;
    this.keys = new Float32Array(size);
    this.values = new Float32Array(size);
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
          this.keys.set(k.subarray(src, src + D), dst);
          this.values.set(v.subarray(src, src + D), dst);
        }
      }
    }
  }

  truncate(n: number): void {
    this.length = n;
  }

  /** Copies positions [0, length) into two contiguous [B, heads, length, D] arrays. */
  read(keysOut: Float32Array, valuesOut: Float32Array): void {
    const { batch, heads, headDim: D, maxSeqLen, length } = this;
    for (let bh = 0; bh < batch * heads; bh++) {
      const from = bh * maxSeqLen * D;
      keysOut.set(this.keys.subarray(from, from + length * D), bh * length * D);
      valuesOut.set(this.values.subarray(from, from + length * D), bh * length * D);
    }
  }

  dispose(): void {
    this.keys = new Float32Array(0);
    this.values = new Float32Array(0);
    this.length = 0;
  }
}
