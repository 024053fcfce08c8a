// Building blocks over the backend ops, for layers that compose them in JS (the latent attention
// of lib/mla.ts): a linear map over [in, out] weights and RMSNorm. The decoder-only models run as
// one backend call per step instead (lib/models/decoder-spec.ts). Activations are (rows, width)
// row-major Float32Arrays.
import type { Backend } from '../backend';
import { planMatmul } from '../validate';

/** y = x W + b with W of dims [inF, outF] (GPT-2's Conv1D layout). */
export class Linear {
  constructor(
    private readonly ops: Backend,
    readonly weight: Float32Array,
    readonly bias: Float32Array | null,
    readonly inF: number,
    readonly outF: number,
  ) {}

  forward(x: Float32Array, rows: number): Float32Array {
    const out = new Float32Array(rows * this.outF);
    this.ops.matmul(planMatmul([rows, this.inF], [this.inF, this.outF], false, false), x, this.weight, this.bias, out);
    return out;
  }
}

/** Hugging Face's LlamaRMSNorm over the last dim: x / sqrt(mean(x^2) + eps) * weight. */
export class RmsNorm {
  constructor(
    private readonly ops: Backend,
    readonly weight: Float32Array,
    readonly eps: number,
  ) {}

  forward(x: Float32Array, rows: number, out: Float32Array): void {
    this.ops.rmsNorm(x, rows, this.weight.length, this.weight, this.eps, out);
  }
}
