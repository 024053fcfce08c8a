// Backend selection as a user meets it: environment variables read at load, the one-time warning
// when calls fall back to JS without being asked, thread counts. Load-time behaviour runs in child
// processes (the environment is read once, on import).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { api, nativeAvailable } from './helpers/backends';

const entry = path.join(__dirname, '..', 'dist', 'index.js');

interface ChildResult {
  out: Record<string, unknown>;
  warnings: { code: string; message: string }[];
  stderr: string;
  status: number | null;
}

/** Runs `body` (which may use `lib`) in a fresh Node with `env`; collects process warnings. */
function child(env: Record<string, string | undefined>, body: string): ChildResult {
  const script = `
    const warnings = [];
    process.on('warning', (w) => warnings.push({ code: w.code, message: w.message }));
    const lib = require(${JSON.stringify(entry)});
    const out = {};
    ${body}
    setImmediate(() => console.log(JSON.stringify({ out, warnings })));
  `;
  const merged: NodeJS.ProcessEnv = { ...process.env };
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete merged[key];
    else merged[key] = value;
  }
  const result = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: merged, timeout: 30_000 });
  const last = result.stdout.trim().split('\n').pop() ?? '{}';
  const parsed = result.status === 0 ? JSON.parse(last) : { out: {}, warnings: [] };
  return { ...parsed, stderr: result.stderr, status: result.status };
}

const use = `out.dot = lib.dot(Float32Array.of(1, 2, 3), Float32Array.of(4, 5, 6)); out.again = lib.dot(Float32Array.of(1), Float32Array.of(2)); out.backend = lib.getBackend();`;

describe('NODE_ATTENTION_BACKEND', () => {
  it.each(['js', 'JS', ' Js '])('accepts %j in any case', (value) => {
    const r = child({ NODE_ATTENTION_BACKEND: value }, use);
    expect(r.status, r.stderr).toBe(0);
    expect(r.out.backend).toBe('js');
    expect(r.warnings).toEqual([]);
  });

  it.skipIf(!nativeAvailable)('accepts NATIVE', () => {
    const r = child({ NODE_ATTENTION_BACKEND: 'NATIVE' }, use);
    expect(r.out.backend).toBe('native');
  });

  it('warns about an unknown value and keeps the default instead of throwing at import', () => {
    const r = child({ NODE_ATTENTION_BACKEND: 'gpu' }, use);
    expect(r.status, r.stderr).toBe(0);
    expect(r.out.dot).toBe(32);
    expect(r.out.backend).toBe(nativeAvailable ? 'native' : 'js');
    const bad = r.warnings.filter((w) => w.code === 'NODE_ATTENTION_BAD_ENV');
    expect(bad).toHaveLength(1);
    expect(bad[0].message).toMatch(/NODE_ATTENTION_BACKEND="gpu" is not 'native' or 'js'/);
  });
});

describe('falling back to JS is announced once', () => {
  const missing = path.join(__dirname, 'no-such-addon.node');

  it('an addon that cannot load: exactly one NODE_ATTENTION_JS_FALLBACK warning, with the reason and the fix', () => {
    const r = child({ NODE_ATTENTION_ADDON: missing, NODE_ATTENTION_BACKEND: undefined }, use);
    expect(r.status, r.stderr).toBe(0);
    expect(r.out).toMatchObject({ dot: 32, again: 2, backend: 'js' });
    const fallback = r.warnings.filter((w) => w.code === 'NODE_ATTENTION_JS_FALLBACK');
    expect(fallback).toHaveLength(1);
    expect(fallback[0].message).toMatch(/could not be loaded/);
    expect(fallback[0].message).toMatch(/no-such-addon\.node: not found/);
    expect(fallback[0].message).toMatch(/npm rebuild node-attention/);
  });

  it('an addon built from other sources (its parameter structs differ) falls back to JS instead of failing the import', () => {
    const fake = path.join(os.tmpdir(), `node-attention-stale-addon-${process.pid}.js`);
    fs.writeFileSync(fake, `module.exports = { info: () => ({ isa: 'avx2', isas: ['avx2'], threads: 1 }),
      wire: { attention: ['B'], mha: ['dIn'], mask: ['maskSb'], present: ['B'] } };`);
    try {
      const r = child({ NODE_ATTENTION_ADDON: fake, NODE_ATTENTION_BACKEND: undefined }, use + 'out.info = lib.backendInfo();');
      expect(r.status, r.stderr).toBe(0);
      expect(r.out).toMatchObject({ dot: 32, backend: 'js', info: { nativeLoaded: false, binaryPath: null } });
      const fallback = r.warnings.filter((w) => w.code === 'NODE_ATTENTION_JS_FALLBACK');
      expect(fallback).toHaveLength(1);
      expect(fallback[0].message).toMatch(/attention parameters have no field Hq: it was built from other sources/);
    } finally {
      fs.rmSync(fake, { force: true });
    }
  });

  it('is silent until a backend is used (importing alone says nothing)', () => {
    const r = child({ NODE_ATTENTION_ADDON: missing, NODE_ATTENTION_BACKEND: undefined }, 'out.info = lib.backendInfo().backend;');
    expect(r.out.info).toBe('js');
    expect(r.warnings).toEqual([]);
  });

  it.each([
    ['NODE_ATTENTION_BACKEND=js', { NODE_ATTENTION_BACKEND: 'js' }, ''],
    ["useBackend('js') before the first call", { NODE_ATTENTION_BACKEND: undefined }, "lib.useBackend('js');"],
  ])('is silenced by %s', (_title, env, prelude) => {
    const r = child({ NODE_ATTENTION_ADDON: missing, ...env }, prelude + use);
    expect(r.out.dot).toBe(32);
    expect(r.warnings).toEqual([]);
  });

  it.skipIf(!nativeAvailable)('says nothing when native loads', () => {
    const r = child({ NODE_ATTENTION_BACKEND: undefined }, use);
    expect(r.out.backend).toBe('native');
    expect(r.warnings).toEqual([]);
  });
});

describe.skipIf(!nativeAvailable)('NODE_ATTENTION_SIMD', () => {
  const best = api.backendInfo().simdSupported;

  it.each(best.map((isa) => [isa.toUpperCase(), isa]))('%s caps the kernel sets at %s (any case)', (value, isa) => {
    const r = child({ NODE_ATTENTION_SIMD: value }, 'out.info = lib.backendInfo();');
    const info = r.out.info as { simd: string; simdSupported: string[] };
    expect(info.simd).toBe(isa);
    expect(info.simdSupported).toEqual(best.slice(best.indexOf(isa)));
    expect(r.warnings).toEqual([]);
  });

  it('an unknown name warns, naming the accepted ones, and keeps every set', () => {
    const r = child({ NODE_ATTENTION_SIMD: 'sse9' }, 'out.info = lib.backendInfo();');
    expect((r.out.info as { simd: string }).simd).toBe(best[0]);
    const bad = r.warnings.filter((w) => w.code === 'NODE_ATTENTION_BAD_ENV');
    expect(bad).toHaveLength(1);
    expect(bad[0].message).toMatch(/NODE_ATTENTION_SIMD: expected one of avx512, avx2, neon, scalar, got "sse9"/);
  });

  it('setSimd switches among the supported sets and refuses the others', () => {
    try {
      for (const isa of best) {
        expect(api.setSimd(isa)).toBe(true);
        expect(api.backendInfo().simd).toBe(isa);
      }
      for (const isa of ['avx512', 'avx2', 'neon', 'scalar', 'sse9'].filter((x) => !best.includes(x))) expect(api.setSimd(isa)).toBe(false);
    } finally {
      api.setSimd(best[0]);
    }
  });

  it('backendInfo reports what the parallel loops run on', () => {
    expect(['openmp', 'threads']).toContain(api.backendInfo().threading);
  });
});

describe.skipIf(!nativeAvailable)('threads', () => {
  it('setNumThreads above the CPU count is clamped to it, and getNumThreads reports the count in use', () => {
    const before = api.getNumThreads();
    try {
      api.setNumThreads(4096);
      expect(api.getNumThreads()).toBe(availableParallelism());
      api.setNumThreads(1);
      expect(api.getNumThreads()).toBe(1);
      expect(api.backendInfo().threads).toBe(1);
    } finally {
      api.setNumThreads(before);
    }
  });
});
