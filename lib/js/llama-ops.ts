// The Llama-family ops in JavaScript (lib/backend.ts: rmsNorm, rope, silu, swiglu), rounding where
// Hugging Face's float32 code rounds, so the native kernels (native/kernels/*/f32_{rmsnorm,rope,
// swiglu}_*.cc) and this agree to an ulp or two. Math.fround marks every float32 rounding.
import type { RopePlan } from '../validate-llama-ops';

const f = Math.fround;

/**
 * out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight over rows of `width`: the mean of squares in
 * float64, r = float32(1 / sqrt(mean + eps)), then weight * (x * r) with both products rounded to
 * float32 (HF LlamaRMSNorm: `weight * (hidden * rsqrt(variance + eps))`).
 */
export function rmsNorm(x: Float32Array, rows: number, width: number, weight: Float32Array, eps: number, out: Float32Array): void {
  for (let r = 0; r < rows; r++) {
    const o = r * width;
    let squares = 0;
    for (let i = 0; i < width; i++) squares += x[o + i] * x[o + i];
    const inv = f(1 / Math.sqrt(squares / width + eps));
    for (let i = 0; i < width; i++) out[o + i] = weight[i] * f(x[o + i] * inv);
  }
}

/**
 * Rotary embedding of x [B, S, H, D] into out, HF's rotate_half pairing (i, i + rotaryDim/2):
 *   out[i] = x[i] cos - x[i + half] sin,  out[i + half] = x[i + half] cos + x[i] sin
 * with the angle float32(float32(p) * invFreq[i]) and its cos/sin rounded to float32, as
 * transformers' LlamaRotaryEmbedding (`position_ids.float() @ inv_freq`, then .cos()/.sin() in
 * float32); dims past rotaryDim are copied.
 */
export function rope(plan: RopePlan, x: Float32Array, positions: Int32Array, out: Float32Array): void {
  const { B, S, H, D, invFreq, sharedPositions } = plan;
  const half = plan.rotaryDim / 2;
  const cos = new Float32Array(half), sin = new Float32Array(half);
  for (let r = 0; r < B * S; r++) {
    const p = positions[sharedPositions ? r % S : r];
    for (let i = 0; i < half; i++) {
      const angle = f(p * invFreq[i]);
      cos[i] = Math.cos(angle);
      sin[i] = Math.sin(angle);
    }
    for (let h = 0; h < H; h++) {
      const o = (r * H + h) * D;
      for (let i = 0; i < half; i++) {
        const a = x[o + i], b = x[o + i + half];
        out[o + i] = f(a * cos[i]) - f(b * sin[i]);
        out[o + i + half] = f(b * cos[i]) + f(a * sin[i]);
      }
      for (let i = 2 * half; i < D; i++) out[o + i] = x[o + i];
    }
  }
}

/** silu(v) = v / (1 + exp(-v)) in float32 steps (torch's formula: silu(-100) = -0, silu(-inf) = NaN). */
function silu1(v: number): number {
  return f(v / f(1 + f(Math.exp(-v))));
}

export function silu(x: Float32Array, out: Float32Array): void {
  for (let i = 0; i < x.length; i++) out[i] = silu1(x[i]);
}

/** out = silu(gate) * up, silu rounded to float32 first (HF: act_fn(gate_proj(x)) * up_proj(x)). */
export function swiglu(gate: Float32Array, up: Float32Array, out: Float32Array): void {
  for (let i = 0; i < gate.length; i++) out[i] = silu1(gate[i]) * up[i];
}
