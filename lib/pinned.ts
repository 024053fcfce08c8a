// Layer weights are read by every async call for the layer's whole life, so the async-safety
// policy (native/binding/pool_worker.h; ARCHITECTURE.md "Async calls and buffer safety") wants
// them in memory no caller can detach: a SharedArrayBuffer.

/** A SharedArrayBuffer-backed copy of `a`, or `a` itself when a SharedArrayBuffer already backs it. */
export function pinned(a: Float32Array): Float32Array {
  if (a.buffer instanceof SharedArrayBuffer) return a;
  const copy = new Float32Array(new SharedArrayBuffer(a.byteLength));
  copy.set(a);
  return copy;
}
