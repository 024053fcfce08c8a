// rmsNorm, rope, silu, swiglu: the Llama-family ops (RMSNorm, rotary position embedding, the SwiGLU
// MLP's activation). Validate once, allocate the output, run on the active backend.
import { current } from './backend';
import type { Tensor } from './types';
import { validateRmsNorm, validateRope, validateSilu, validateSwiglu } from './validate-llama-ops';
import type { RmsNormOptions, RopeOptions } from './validate-llama-ops';

/**
 * RMSNorm over the last dim, as Hugging Face's LlamaRMSNorm: `x / sqrt(mean(x^2) + eps) * weight`.
 * The mean of squares is taken in float64, the rest in float32 with HF's roundings.
 * @param x Tensor (or Float32Array as 1-D) of any rank >= 1
 * @param weight Tensor or Float32Array of length = the last dim of x
 * @param opts eps (default 1e-6)
 * @example rmsNorm({ data: x, dims: [2, 5, 64] }, gamma, { eps: 1e-5 }).dims // [2, 5, 64]
 */
export function rmsNorm(x: Tensor | Float32Array, weight: Tensor | Float32Array, opts?: RmsNormOptions): Tensor {
  const call = validateRmsNorm(x, weight, opts);
  const data = new Float32Array(call.x.data.length);
  current().rmsNorm(call.x.data, call.rows, call.width, call.weight, call.eps, data);
  return { data, dims: call.x.dims };
}

/**
 * Rotary position embedding (Hugging Face's convention: rotate_half pairs dim i with
 * i + rotaryDim/2) on x [B, S, H, D], the layout a q/k projection produces.
 * The inverse frequencies 1 / theta^(2i/rotaryDim) are computed in float64 (Llama 3 scaling
 * applied there) and rounded to float32; the angles are float32(position * invFreq) and their
 * cos/sin float32, as transformers' LlamaRotaryEmbedding, so long positions agree with it.
 * @param x Tensor [B, S, H, D]
 * @param positions Int32Array of B*S positions (row-major [B, S]), or S shared by the batch; each >= 0
 * @param opts theta (HF rope_theta), rotaryDim (even, <= D, default D: the rest is copied),
 *   scaling (Llama 3's rope_scaling, `rope_type: 'llama3'`)
 * @example rope(q, Int32Array.from([0, 1, 2]), { theta: 10000 }) // q of dims [1, 3, H, D]
 */
export function rope(x: Tensor, positions: Int32Array, opts: RopeOptions): Tensor {
  const call = validateRope(x, positions, opts);
  const data = new Float32Array(call.x.data.length);
  current().rope(call.plan, call.x.data, call.positions, data);
  return { data, dims: call.x.dims };
}

/**
 * SiLU, `x / (1 + exp(-x))` elementwise (torch's formula: silu(-inf) is NaN).
 * @param x Tensor or Float32Array
 */
export function silu(x: Tensor | Float32Array): Tensor {
  const tx = validateSilu(x);
  const data = new Float32Array(tx.data.length);
  current().silu(tx.data, data);
  return { data, dims: tx.dims };
}

/**
 * SwiGLU, `silu(gate) * up` elementwise (the Llama MLP: down(swiglu(gate(x), up(x)))).
 * @param gate Tensor or Float32Array
 * @param up same dims as gate
 */
export function swiglu(gate: Tensor | Float32Array, up: Tensor | Float32Array): Tensor {
  const call = validateSwiglu(gate, up);
  const data = new Float32Array(call.gate.data.length);
  current().swiglu(call.gate.data, call.up.data, data);
  return { data, dims: call.gate.dims };
}
