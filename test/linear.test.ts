// linear(x, w, b) = x @ w + b on both backends against a float64 reference, for x of rank 1, 2
// and 3, with and without bias, and its shape errors.
import { describe, expect, it } from 'vitest';
import { api, forEachBackend } from './helpers/backends';
import { expectClose, matmulRef, randomArray } from './helpers/oracle';

const tensor = (dims: number[], seed: number) => ({ data: randomArray(dims.reduce((p, d) => p * d, 1), seed), dims });

/** Float64 x @ w + b with x flattened to rows. */
function reference(x: Float32Array, w: Float32Array, b: Float32Array | null, inF: number, outF: number): Float64Array {
  const rows = x.length / inF;
  const y = matmulRef(x, w, rows, inF, outF);
  if (b) for (let r = 0; r < rows; r++) for (let j = 0; j < outF; j++) y[r * outF + j] += b[j];
  return y;
}

const tol = (inF: number) => 4e-7 * (inF + 4);

forEachBackend('linear', () => {
  for (const [label, xDims] of [['rank 1', [24]], ['rank 2', [7, 24]], ['rank 3', [2, 5, 24]], ['rank 4', [2, 1, 3, 24]]] as const) {
    it(`maps x of ${label} to [..., out], with and without bias`, () => {
      const x = tensor([...xDims], 1), w = tensor([24, 19], 2), b = randomArray(19, 3);
      const plain = api.linear(x, w);
      expect(plain.dims).toEqual([...xDims.slice(0, -1), 19]);
      expectClose(plain.data, reference(x.data, w.data, null, 24, 19), tol(24), 2e-5);
      const biased = api.linear(x, w, b);
      expect(biased.dims).toEqual([...xDims.slice(0, -1), 19]);
      expectClose(biased.data, reference(x.data, w.data, b, 24, 19), tol(24), 2e-5);
      expectClose(api.linear(x, w, { data: b, dims: [19] }).data, biased.data, 0, 0);
      expectClose(api.linear(x, w, null).data, plain.data, 0, 0);
    });
  }

  it('accepts a bare Float32Array as 1-D x', () => {
    const x = randomArray(5, 1), w = tensor([5, 3], 2);
    const y = api.linear(x, w);
    expect(y.dims).toEqual([3]);
    expectClose(y.data, reference(x, w.data, null, 5, 3), 1e-6, 1e-6);
  });

  it('computes a projection layer [320, 512] @ [512, 64] + b (threaded natively)', () => {
    const x = tensor([320, 512], 4), w = tensor([512, 64], 5), b = randomArray(64, 6);
    expectClose(api.linear(x, w, b).data, reference(x.data, w.data, b, 512, 64), tol(512), 2e-5);
  });

  it('matches matmul with bias', () => {
    const x = tensor([3, 4, 33], 7), w = tensor([33, 17], 8), b = randomArray(17, 9);
    expect(api.linear(x, w, b).data).toEqual(api.matmul(x, w, { bias: b }).data);
  });

  it('never mutates its inputs', () => {
    const x = tensor([6, 10], 1), w = tensor([10, 7], 2), b = randomArray(7, 3);
    const copies = [x.data.slice(), w.data.slice(), b.slice()];
    api.linear(x, w, b);
    expect([x.data, w.data, b]).toEqual(copies);
  });
});

describe('linear shape errors', () => {
  const cases: [string, () => unknown, string, RegExp][] = [
    ['in differs', () => api.linear(tensor([4, 3], 1), tensor([2, 5], 2)), 'RangeError',
      /^Expected dims \[3, out\] \(in = 3, the last dim of x\) for w but received dims \[2, 5\] \(x has dims \[4, 3\]\)$/],
    ['w is 1-D', () => api.linear(tensor([4, 3], 1), tensor([3], 2)), 'RangeError', /^Expected dims \[in, out\] for w but received dims \[3\]$/],
    ['w is a bare Float32Array', () => api.linear(tensor([4, 3], 1), new Float32Array(6) as never), 'TypeError', /^Expected a Tensor \{data: Float32Array, dims\} for w/],
    ['b of the wrong length', () => api.linear(tensor([4, 3], 1), tensor([3, 5], 2), randomArray(4, 3)), 'RangeError',
      /^Expected dims \[5\] \(the last output dim\) for b but received dims \[4\]$/],
    ['b is an array', () => api.linear(tensor([4, 3], 1), tensor([3, 5], 2), [1, 2, 3, 4, 5] as never), 'TypeError', /for b but received Array\(5\)$/],
    ['x is a number', () => api.linear(3 as never, tensor([3, 5], 2)), 'TypeError', /for x but received number 3$/],
  ];
  it.each(cases)('%s', (_label, call, kind, message) => {
    for (const backend of ['js', 'native'] as const) {
      if (backend === 'native' && !api.backendInfo().nativeLoaded) continue;
      api.useBackend(backend);
      const err = (() => { try { call(); } catch (e) { return e as Error; } throw new Error('did not throw'); })();
      expect(err.constructor.name).toBe(kind);
      expect(err.message).toMatch(message);
    }
  });
});
