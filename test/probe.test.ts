// The machine-limit probes behind `npm run bench`'s "% of limit" (native only; private exports).
// No timing assertions: only that they measure something positive and reject bad arguments.
import { describe, expect, it } from 'vitest';
import { loaded } from '../dist/native/load.js';

interface ProbeBinding {
  _probePeak(threads: unknown, seconds: unknown): { gflops: number; kernel: string; threads: number };
  _probeBandwidth(threads: unknown, bytes: unknown): { gbps: number; bytes: number; threads: number };
}

const raw = loaded.binding as unknown as ProbeBinding | null;
const suite = raw ? describe : describe.skip;
if (!raw) console.warn('[probe] skipped: the native addon did not load');

suite('machine-limit probes', () => {
  const addon = raw as ProbeBinding;

  it('measures a positive FMA peak with the best kernel set', () => {
    const r = addon._probePeak(2, 0.002);
    expect(r.gflops).toBeGreaterThan(0);
    expect(Number.isFinite(r.gflops)).toBe(true);
    expect((addon as unknown as { info(): { isas: string[] } }).info().isas).toContain(r.kernel);
    expect(r.threads).toBe(2);
  });

  it('measures a positive read bandwidth', () => {
    const r = addon._probeBandwidth(2, 2 ** 20 + 12);
    expect(r.gbps).toBeGreaterThan(0);
    expect(Number.isFinite(r.gbps)).toBe(true);
    expect(r.bytes).toBe(2 ** 20 + 12);
  });

  it.each([[0], [4097], [-1], [1.5], [Number.NaN]])('rejects threads = %s', (threads) => {
    expect(() => addon._probePeak(threads, 0.002)).toThrow(RangeError);
    expect(() => addon._probeBandwidth(threads, 2 ** 20)).toThrow(RangeError);
  });

  it('rejects non-numeric arguments with a TypeError or RangeError', () => {
    for (const bad of ['2', null, undefined, {}]) {
      expect(() => addon._probePeak(bad, 0.002)).toThrow(/threads/);
      expect(() => addon._probePeak(1, bad)).toThrow(/seconds/);
      expect(() => addon._probeBandwidth(1, bad)).toThrow(/bytes/);
    }
  });

  it.each([[0], [0.0001], [1.5], [11], [Number.POSITIVE_INFINITY]])('rejects seconds = %s', (seconds) => {
    expect(() => addon._probePeak(1, seconds)).toThrow(/Expected seconds in \[0.001, 1\]/);
  });

  it.each([[0], [2 ** 20 - 1], [2 ** 32 + 1], [2 ** 36 + 1]])('rejects bytes = %s', (bytes) => {
    expect(() => addon._probeBandwidth(1, bytes)).toThrow(/Expected bytes in \[1 MiB, 4 GiB\]/);
  });
});
