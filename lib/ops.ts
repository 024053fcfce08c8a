// dot, matmul, linear: validate once, then run on the active backend.
import { current } from './backend';
import type { MatmulOptions, Tensor } from './types';
import { validateDot, validateLinear, validateMatmul, type ValidatedMatmul } from './validate';

function run({ plan, a, b, bias, out }: ValidatedMatmul): Tensor {
  const data = out ?? new Float32Array(plan.outSize);
  current().matmul(plan, a.data, b.data, bias, data);
  return { data, dims: plan.outDims };
}

/**
 * Dot product of two equal-length vectors.
 * @param a first vector
 * @param b second vector, same length as `a`
 * @example dot(new Float32Array([1, 2, 3]), new Float32Array([4, 5, 6])) // 32
 */
export function dot(a: Float32Array, b: Float32Array): number {
  validateDot(a, b);
  return current().dot(a, b);
}

/**
 * Matrix product with numpy / torch.matmul semantics: 1-D operands are promoted and squeezed,
 * leading dims broadcast.
 * @param a left operand, Tensor (or Float32Array as 1-D)
 * @param b right operand, Tensor (or Float32Array as 1-D)
 * @param opts transA / transB swap an operand's last two dims; bias (1-D) is added along the last
 *   output dim; out is a Float32Array of the output's length to write into.
 * @example matmul({ data: a, dims: [150, 4] }, { data: b, dims: [4, 6] }).dims // [150, 6]
 */
export function matmul(a: Tensor | Float32Array, b: Tensor | Float32Array, opts?: MatmulOptions): Tensor {
  return run(validateMatmul(a, b, opts));
}

/**
 * A linear layer: x @ w + b, with w of shape [in, out] (the `x @ wq + bq` convention).
 * @param x input of any rank >= 1, last dim `in`
 * @param w weights [in, out]
 * @param b optional bias [out]
 */
export function linear(x: Tensor | Float32Array, w: Tensor, b?: Tensor | Float32Array | null): Tensor {
  return run(validateLinear(x, w, b));
}
