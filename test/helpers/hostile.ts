// Hostile values and the "clean error" assertion shared by the fuzz, error and property tests.
// A clean error is a TypeError or RangeError with a message: never a crash, never another kind.
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';

/** How many fast-check runs a property gets (test:asan raises it through the environment). */
export const FUZZ_RUNS = Number(process.env.NODE_ATTENTION_FUZZ_RUNS ?? 200);

/** Whether this process runs under AddressSanitizer (test:asan preloads libasan). */
export const underAsan = (() => {
  try {
    return readFileSync('/proc/self/maps', 'utf8').includes('libasan');
  } catch {
    return false;
  }
})();

export type ErrorKind = 'TypeError' | 'RangeError';

/** Runs `fn` and returns the error it threw, failing unless it is a TypeError or RangeError. */
export function cleanError(fn: () => unknown, kind?: ErrorKind): TypeError | RangeError {
  let thrown: unknown = undefined;
  let threw = false;
  try {
    fn();
  } catch (err) {
    thrown = err;
    threw = true;
  }
  expect(threw, 'expected the call to throw').toBe(true);
  // Compare by name: errors made by the addon come from the same realm, but vitest may run tests
  // in a different one, where instanceof would be misleading.
  const name = (thrown as Error)?.constructor?.name;
  expect(['TypeError', 'RangeError'], `unexpected ${String(thrown)}`).toContain(name);
  if (kind) expect(name, String(thrown)).toBe(kind);
  expect(typeof (thrown as Error).message).toBe('string');
  expect((thrown as Error).message.length).toBeGreaterThan(0);
  return thrown as TypeError | RangeError;
}

/** Like cleanError, and also checks the public message format and its stable code. */
export function publicError(fn: () => unknown, kind: ErrorKind, name: string | RegExp): TypeError | RangeError {
  const err = cleanError(fn, kind);
  const argument = typeof name === 'string' ? name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') : name.source;
  expect(err.message).toMatch(new RegExp(`^Expected .+ for ${argument} but received .+`, 's'));
  expect((err as { code?: string }).code).toMatch(/^ERR_ATTN_/);
  return err;
}

/** A Float32Array whose ArrayBuffer has been transferred away (detached). */
export function detachedFloat32(length = 4): Float32Array {
  const array = new Float32Array(length);
  structuredClone(array.buffer, { transfer: [array.buffer] });
  return array;
}

/** Whether a view's buffer is detached (Node 20 has no ArrayBuffer.prototype.detached). */
export function isDetached(view: ArrayBufferView): boolean {
  try {
    new Uint8Array(view.buffer);
    return false;
  } catch {
    return true;
  }
}

/** A Float32Array over a SharedArrayBuffer, filled from `values`. */
export function sharedFloat32(values: ArrayLike<number>): Float32Array {
  const array = new Float32Array(new SharedArrayBuffer(values.length * 4));
  array.set(values);
  return array;
}

/** Values that are not Float32Arrays. */
export const notFloat32: readonly [string, () => unknown][] = [
  ['undefined', () => undefined],
  ['null', () => null],
  ['a number', () => 3],
  ['a string', () => 'abc'],
  ['a plain array', () => [1, 2, 3]],
  ['a Float64Array', () => new Float64Array(4)],
  ['an Int32Array', () => new Int32Array(4)],
  ['a Uint8Array', () => new Uint8Array(16)],
  ['an ArrayBuffer', () => new ArrayBuffer(16)],
  ['a DataView', () => new DataView(new ArrayBuffer(16))],
  ['an object', () => ({ length: 4 })],
  ['a BigInt', () => 4n],
  ['a function', () => () => 1],
];

/** Numbers (and non-numbers) that are not valid sizes. */
export const badSizes: readonly unknown[] = [
  -1, -0.5, 1.5, NaN, Infinity, -Infinity, 2 ** 53, 2 ** 64, 1e300, -1e300, Number.MAX_VALUE,
  '3', null, undefined, {}, [], 3n, true,
];

/** Any value a careless or hostile caller might pass in place of an argument. */
export function hostileValue(): fc.Arbitrary<unknown> {
  return fc.oneof(
    fc.constantFrom(...badSizes),
    fc.integer({ min: -4, max: 70 }),
    fc.double(),
    fc.constantFrom(...notFloat32.map(([, make]) => make)).map((make) => make()),
    fc.integer({ min: 0, max: 70 }).map((n) => new Float32Array(n)),
    fc.integer({ min: 1, max: 8 }).map((n) => detachedFloat32(n)),
    fc.integer({ min: 0, max: 40 }).map((n) => new Float64Array(n).fill(n)),
    fc.integer({ min: 0, max: 40 }).map((n) => new Int32Array(n).fill(n)),
    fc.integer({ min: 0, max: 40 }).map((n) => new Uint8Array(n).fill(1)),
  );
}
