// The JS backend's decoder step (lib/models/decoder-spec.ts): the same blocks in the same order as
// native/core/decoder.cc, on the JS ops. 16-bit weights stay 16-bit: each element is converted
// through a 65536-entry table as the loops read it. Sums run in float64.
import type { DecoderModel, DecoderSpec, DecoderState, LinearSpec, Matrix, NormSpec, WeightDtype } from '../models/decoder-spec';
import { bf16BitsToF32, f16BitsToF32 } from '../gpt/safetensors';
import type { AttentionPlan, MaskView } from '../validate-attention';
import { attention } from './attention';
import { JsKVStore } from './kv-cache';
import { rmsNorm, rope, swiglu } from './llama-ops';
import { geluTanh, layerNorm } from './ops';

const tables = new Map<WeightDtype, Float32Array>();

/** Every 16-bit pattern's float32 value. */
function table(dtype: WeightDtype): Float32Array {
  let t = tables.get(dtype);
  if (!t) {
    t = new Float32Array(65536);
    const convert = dtype === 'F16' ? f16BitsToF32 : bf16BitsToF32;
    for (let i = 0; i < 65536; i++) t[i] = convert(i);
    tables.set(dtype, t);
  }
  return t;
}

/** y (rows, w.rows) = x (rows, w.cols) w^T + bias. */
function linear({ w, bias }: LinearSpec, x: Float32Array, rows: number, y: Float32Array): void {
  const n = w.rows, k = w.cols, data = w.data;
  const t = w.dtype === 'F32' ? null : table(w.dtype);
  for (let r = 0; r < rows; r++) {
    const xo = r * k;
    for (let j = 0; j < n; j++) {
      const wo = j * k;
      let s = bias ? bias[j] : 0;
      if (t) for (let p = 0; p < k; p++) s += x[xo + p] * t[data[wo + p]];
      else for (let p = 0; p < k; p++) s += x[xo + p] * data[wo + p];
      y[r * n + j] = s;
    }
  }
}

/** dst = row `row` of `m` (accumulate: dst +=), as float32. */
function embedRow(m: Matrix, row: number, dst: Float32Array, at: number, accumulate: boolean): void {
  const t = m.dtype === 'F32' ? null : table(m.dtype), cols = m.cols, from = row * cols;
  for (let i = 0; i < cols; i++) {
    const v = t ? t[m.data[from + i]] : m.data[from + i];
    dst[at + i] = accumulate ? dst[at + i] + v : v;
  }
}

class JsDecoderState implements DecoderState {
  private caches: JsKVStore[];
  private readonly padded: boolean;

  constructor(private readonly spec: DecoderSpec, readonly B: number, readonly maxLen: number, private readonly pad: Int32Array,
    kvDtype: WeightDtype) {
    this.caches = spec.layers.map(() => new JsKVStore(B, spec.numKVHeads, spec.headDim, maxLen, kvDtype));
    this.padded = pad.some((p) => p > 0);
  }

  get length(): number {
    return this.caches[0]?.length ?? 0;
  }

  step(tokens: Int32Array, S: number, logits: Float32Array, allPositions: boolean, probs?: { layer: number; out: Float32Array }): void {
    const s = this.spec, { B } = this, rows = B * S, E = s.width, D = s.headDim;
    const qWidth = s.numHeads * D, kvWidth = s.numKVHeads * D, qkvWidth = qWidth + 2 * kvWidth;
    const past = this.length, total = past + S;
    const positions = new Int32Array(rows);
    for (let r = 0; r < rows; r++) positions[r] = Math.max(0, past + (r % S) - this.pad[Math.floor(r / S)]);
    const x = new Float32Array(rows * E), h = new Float32Array(rows * E);
    for (let r = 0; r < rows; r++) {
      embedRow(s.tokens, tokens[r], x, r * E, false);
      if (s.positions) embedRow(s.positions, positions[r], x, r * E, true);
    }
    // Left pads and a sliding window the step reaches past hide keys from below: [B, 1, S, total].
    let mask: MaskView | null = null;
    const windowed = s.window > 0 && total > s.window;
    if (this.padded || windowed) {
      const keep = new Uint8Array(B * S * total);
      for (let b = 0; b < B; b++) {
        for (let i = 0; i < S; i++) {
          const lo = Math.max(Math.min(this.pad[b], total), windowed ? past + i + 1 - s.window : 0);
          keep.fill(1, (b * S + i) * total + lo, (b * S + i + 1) * total);
        }
      }
      mask = { data: keep, bool: true, sb: S * total, sh: 0, sq: total, len: total };
    }
    const heads = (H: number) => ({ sb: S * H * D, sh: D, st: H * D });
    const kv = { sb: s.numKVHeads * this.maxLen * D, sh: this.maxLen * D, st: D };
    const plan: AttentionPlan = {
      rank: 3, B, Hq: s.numHeads, Hkv: s.numKVHeads, Sq: S, Skv: S, past, total, D, Dv: D, scale: s.scale, softcap: 0,
      causal: true, qkMode: -1, q: heads(s.numHeads), k: kv, v: kv, y: heads(s.numHeads), kNew: heads(s.numKVHeads),
      vNew: heads(s.numKVHeads), mask, kvValid: null, causalOffset: new Int32Array(B).fill(past),
      yDims: [B, S, qWidth], presentKeyDims: null, presentValueDims: null, qkDims: null,
    };
    const normalize = (norm: NormSpec, from: Float32Array, n: number, out: Float32Array) => {
      if (s.norm === 'rms') rmsNorm(from, n, E, norm.weight, s.eps, out);
      else layerNorm(from, n, E, norm.weight, norm.bias!, s.eps, out);
    };
    const qkv = new Float32Array(rows * qkvWidth), ctx = new Float32Array(rows * qWidth);
    let q = new Float32Array(rows * qWidth), k = new Float32Array(rows * kvWidth);
    const v = new Float32Array(rows * kvWidth);
    const ffWidth = s.mlp === 'swiglu' ? 2 * s.ffn : s.ffn;
    const ff = new Float32Array(rows * ffWidth);
    for (let l = 0; l < s.layers.length; l++) {
      const layer = s.layers[l], cache = this.caches[l];
      normalize(layer.norm1, x, rows, h);
      linear(layer.qkv, h, rows, qkv);
      for (let r = 0; r < rows; r++) {
        const o = r * qkvWidth;
        q.set(qkv.subarray(o, o + qWidth), r * qWidth);
        k.set(qkv.subarray(o + qWidth, o + qWidth + kvWidth), r * kvWidth);
        v.set(qkv.subarray(o + qWidth + kvWidth, o + qkvWidth), r * kvWidth);
      }
      if (s.rope) {
        // Keys are cached rotated, so a step rotates only its own query and key.
        const rq = new Float32Array(q.length), rk = new Float32Array(k.length);
        const r = { B, S, D, rotaryDim: s.rope.rotaryDim, invFreq: s.rope.invFreq, sharedPositions: false };
        rope({ ...r, H: s.numHeads }, q, positions, rq);
        rope({ ...r, H: s.numKVHeads }, k, positions, rk);
        q = rq;
        k = rk;
      }
      cache.write(past, k, v, S);
      if (probs && probs.layer === l) attention({ ...plan, qkMode: 3 }, q, cache.keys, cache.values, ctx, probs.out, cache.dtype);
      else attention(plan, q, cache.keys, cache.values, ctx, null, cache.dtype);
      linear(layer.o, ctx, rows, h);
      for (let i = 0; i < rows * E; i++) x[i] += h[i];
      normalize(layer.norm2, x, rows, h);
      linear(layer.up, h, rows, ff);
      let hidden = ff;
      if (s.mlp === 'swiglu') {
        hidden = new Float32Array(rows * s.ffn);
        for (let r = 0; r < rows; r++) {
          const o = r * ffWidth;
          swiglu(ff.subarray(o, o + s.ffn), ff.subarray(o + s.ffn, o + ffWidth), hidden.subarray(r * s.ffn, (r + 1) * s.ffn));
        }
      } else {
        geluTanh(ff);
      }
      linear(layer.down, hidden, rows, h);
      for (let i = 0; i < rows * E; i++) x[i] += h[i];
    }
    const outRows = allPositions ? rows : B;
    let last = x;
    if (!allPositions && S > 1) {
      last = new Float32Array(B * E);
      for (let b = 0; b < B; b++) last.set(x.subarray(((b + 1) * S - 1) * E, (b + 1) * S * E), b * E);
    }
    normalize(s.finalNorm, last, outRows, h);
    linear({ w: s.head ?? s.tokens, bias: null }, h, outRows, logits);
    for (const cache of this.caches) cache.length = total;
  }

  /** The step on the JS thread, after a macrotask turn: timers and I/O run between steps. */
  async stepAsync(tokens: Int32Array, S: number, logits: Float32Array, allPositions: boolean): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.step(tokens, S, logits, allPositions);
  }

  truncate(n: number): void {
    for (const cache of this.caches) cache.truncate(n);
  }

  dispose(): void {
    for (const cache of this.caches) cache.dispose();
    this.caches = [];
  }
}

export function createDecoder(spec: DecoderSpec): DecoderModel {
  return {
    state: (B, maxLen, pad, kvDtype) => new JsDecoderState(spec, B, maxLen, pad ?? new Int32Array(B), kvDtype),
  };
}
