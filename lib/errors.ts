// One message format for every argument error (sharp's is.invalidParameterError):
//   Expected <what was expected> for <argument> but received <what was received>
// TypeError for the wrong kind of value, RangeError for a wrong size or value. Each carries a
// stable `code` so callers can branch without parsing messages.

export type ErrorCode = 'ERR_ATTN_INVALID_TYPE' | 'ERR_ATTN_INVALID_VALUE' | 'ERR_ATTN_SHAPE_MISMATCH' | 'ERR_ATTN_CACHE_FULL';

function withCode<E extends Error>(error: E, code: ErrorCode): E & { code: ErrorCode } {
  return Object.assign(error, { code });
}

export function typeError(name: string, expected: string, actual: unknown): TypeError {
  return withCode(new TypeError(`Expected ${expected} for ${name} but received ${describe(actual)}`), 'ERR_ATTN_INVALID_TYPE');
}

export function rangeError(name: string, expected: string, received: string, code: ErrorCode = 'ERR_ATTN_INVALID_VALUE'): RangeError {
  return withCode(new RangeError(`Expected ${expected} for ${name} but received ${received}`), code);
}

export function shapeError(name: string, expected: string, received: string): RangeError {
  return rangeError(name, expected, received, 'ERR_ATTN_SHAPE_MISMATCH');
}

export function formatDims(dims: readonly number[]): string {
  return `[${dims.join(', ')}]`;
}

/** A short description of any value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return `Array(${value.length})`;
  if (ArrayBuffer.isView(value)) {
    const length = (value as unknown as { length?: number }).length;
    return `${value.constructor.name}${length === undefined ? '' : ` of length ${length}`}`;
  }
  if (typeof value === 'number') return `number ${value}`;
  if (typeof value === 'string') return `string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'object') {
    const ctor = (value as object).constructor;
    return ctor && ctor !== Object ? `${ctor.name} object` : `object with keys {${Object.keys(value as object).slice(0, 6).join(', ')}}`;
  }
  return `${typeof value} ${String(value)}`;
}

/**
 * Awaits a job that runs off the JS thread and, when it fails, gives its error the stack of the
 * call that started it (a failure inside a pool worker has no JS stack of its own).
 */
export async function withCallSite<T>(job: () => Promise<T>): Promise<T> {
  const callSite = new Error();
  try {
    return await job();
  } catch (err) {
    if (err instanceof Error && callSite.stack) err.stack = `${err.name}: ${err.message}${callSite.stack.slice(callSite.stack.indexOf('\n'))}`;
    throw err;
  }
}
