// The attention heatmap SVG: one cell per weight in row-major order (rows = queries), viridis
// colours scaled to the largest weight, escaped labels, and a picture of a real model's head;
// axis ticks and labels, the linear / log / row scales, the PNG raster of long maps (decoded here
// and compared cell by cell with the rects), its size at 512 tokens, and the example scripts' flags.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../dist/random.js';
import { api, forEachBackend } from './helpers/backends';

/** The fill colour of every heatmap cell, in document order (rows, then columns). */
function cellFills(svg: string): string[] {
  return [...svg.matchAll(/<rect x="[^"]+" y="[^"]+" width="[^"]+" height="[^"]+" fill="(#[0-9a-f]{6})"><title>/g)].map((m) => m[1]);
}

const DARK = '#440154', BRIGHT = '#fde725', MASKED = '#eeeeee';

describe('attentionHeatmapSVG', () => {
  it('draws rows as queries and columns as keys, the largest weight bright and the causal triangle grey', () => {
    // A causal pattern: row i spreads evenly over keys 0..i.
    const S = 4, data = new Float32Array(S * S);
    for (let i = 0; i < S; i++) for (let j = 0; j <= i; j++) data[i * S + j] = 1 / (i + 1);
    const svg = api.attentionHeatmapSVG({ data, dims: [S, S] }, { title: 'causal' });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    const fills = cellFills(svg);
    expect(fills).toHaveLength(S * S);
    expect(fills[0]).toBe(BRIGHT);
    for (let i = 0; i < S; i++) for (let j = i + 1; j < S; j++) expect(fills[i * S + j]).toBe(MASKED);
    expect(fills[S * S - 1]).not.toBe(DARK);
    expect(svg).toContain('<title>query 2 → key 1: 0.3333</title>');
    expect(svg).toContain('>causal</text>');
    expect(svg).toContain('>masked</text>');
    // Asked not to, it colours the zeros on the scale like any other weight.
    const plain = cellFills(api.attentionHeatmapSVG({ data, dims: [S, S] }, { causal: false }));
    for (let i = 0; i < S; i++) for (let j = i + 1; j < S; j++) expect(plain[i * S + j]).toBe(DARK);
  });

  it('picks one head of a 4-D qkMatmulOutput and escapes labels', () => {
    const data = new Float32Array(2 * 3 * 2 * 2);
    data.set([0, 1, 1, 0], (1 * 3 + 2) * 4);
    const svg = api.attentionHeatmapSVG({ data, dims: [2, 3, 2, 2] }, { batch: 1, head: 2, queryLabels: ['<a>', 'b&c'], max: 1 });
    expect(cellFills(svg)).toEqual([DARK, BRIGHT, BRIGHT, DARK]);
    expect(svg).toContain('&lt;a&gt;');
    expect(svg).toContain('b&amp;c');
    expect(svg).not.toContain('<a>');
  });

  it('rejects bad input with clear errors', () => {
    const w = { data: new Float32Array(8), dims: [2, 2, 2] };
    expect(() => api.attentionHeatmapSVG(w)).toThrow(/Expected dims \[Sq, Sk\] or \[B, H, Sq, Sk\] for weights but received dims \[2, 2, 2\]/);
    const square = { data: new Float32Array(4), dims: [2, 2] };
    expect(() => api.attentionHeatmapSVG(square, { queryLabels: ['a'] })).toThrow(/Expected 2 labels for opts\.queryLabels but received 1/);
    expect(() => api.attentionHeatmapSVG({ data: new Float32Array(16), dims: [1, 4, 2, 2] }, { head: 4 })).toThrow(/\[0, 4\) for opts\.head/);
    expect(() => api.attentionHeatmapSVG(square, { max: 0 })).toThrow(/opts\.max/);
  });
});

forEachBackend('attention heatmap of a GPT head', () => {
  it('shows the causal triangle of a random model', () => {
    const model = api.GPT.random({ vocab_size: 50, n_positions: 16, n_embd: 32, n_layer: 2, n_head: 4 }, 3, { std: 0.2 });
    const tokens = Int32Array.from([1, 5, 9, 13, 17, 21, 25, 29]);
    const fills = cellFills(api.attentionHeatmapSVG(model.attentionWeights(tokens, { layer: 1, head: 2 })));
    expect(fills).toHaveLength(64);
    // Query 0 sees only key 0 (weight 1, the brightest); every row has a visible (non-zero) key.
    expect(fills[0]).toBe(BRIGHT);
    for (let i = 0; i < 8; i++) {
      for (let j = i + 1; j < 8; j++) expect(fills[i * 8 + j]).toBe(MASKED);
      expect(fills.slice(i * 8, i * 8 + i + 1).some((f) => f !== DARK)).toBe(true);
    }
  });
});

/** The tick labels of the query rows and key columns, in order. */
function axisLabels(svg: string): { rows: string[]; cols: string[] } {
  const group = (name: string): string[] => {
    const body = new RegExp(`<g class="${name}"[^>]*>([^]*?)</g>`).exec(svg)![1];
    return [...body.matchAll(/<text [^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
  };
  return { rows: group('query-labels'), cols: group('key-labels') };
}

/** Decodes the heatmap's PNG data URI: checks signature and CRCs, returns the RGB of every pixel. */
function decodeRaster(svg: string): { width: number; height: number; rgb: number[][] } {
  const images = [...svg.matchAll(/<image [^>]*xlink:href="data:image\/png;base64,([^"]+)"/g)];
  expect(images).toHaveLength(1);
  const png = Buffer.from(images[0][1], 'base64');
  expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const chunks = new Map<string, Buffer>();
  for (let at = 8; at < png.length;) {
    const length = png.readUInt32BE(at), type = png.toString('latin1', at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + length);
    expect(png.readUInt32BE(at + 8 + length), `${type} CRC`).toBe(zlib.crc32(png.subarray(at + 4, at + 8 + length)));
    chunks.set(type, data);
    at += 12 + length;
  }
  const ihdr = chunks.get('IHDR')!, palette = chunks.get('PLTE')!;
  const width = ihdr.readUInt32BE(0), height = ihdr.readUInt32BE(4);
  expect([...ihdr.subarray(8)]).toEqual([8, 3, 0, 0, 0]);
  expect(chunks.has('IEND')).toBe(true);
  const raw = zlib.inflateSync(chunks.get('IDAT')!);
  expect(raw.length).toBe((width + 1) * height);
  const rgb: number[][] = [];
  for (let y = 0; y < height; y++) {
    expect(raw[y * (width + 1)]).toBe(0);
    for (let x = 0; x < width; x++) {
      const k = raw[y * (width + 1) + 1 + x];
      rgb.push([palette[3 * k], palette[3 * k + 1], palette[3 * k + 2]]);
    }
  }
  return { width, height, rgb };
}

const hexRgb = (hex: string): number[] => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));

/** A causal softmax map of S random scores, as an attention head gives. */
function causalWeights(S: number, seed: number): Float32Array {
  const next = seededRandom(seed), data = new Float32Array(S * S);
  for (let i = 0; i < S; i++) {
    let sum = 0;
    for (let j = 0; j <= i; j++) sum += data[i * S + j] = Math.exp(6 * next());
    for (let j = 0; j <= i; j++) data[i * S + j] /= sum;
  }
  return data;
}

describe('heatmap axes, scales and size', () => {
  it('labels every row and column with a tick when the cells are large enough, shortening long labels', () => {
    const S = 6, data = causalWeights(S, 1);
    const labels = ['The', 'quick', 'brown', 'fox', 'antidisestablishmentarianism', '<eos>'];
    const svg = api.attentionHeatmapSVG({ data, dims: [S, S] }, { queryLabels: labels });
    const { rows, cols } = axisLabels(svg);
    const shown = ['The', 'quick', 'brown', 'fox', 'antidisestablis…', '&lt;eos&gt;'];
    expect(rows).toEqual(shown);
    expect(cols).toEqual(shown);
    // One tick per label on each axis, in one path.
    const ticks = /<path d="([^"]+)" stroke/.exec(svg)![1];
    expect(ticks.match(/M/g)).toHaveLength(2 * S);
    // The tooltip keeps the whole label.
    expect(svg).toContain('query antidisestablishmentarianism → key The');
  });

  it('thins the ticks of a long map to a 1-2-5 stride whose labels do not overlap', () => {
    for (const S of [40, 100, 300, 512]) {
      const svg = api.attentionHeatmapSVG({ data: causalWeights(S, 2), dims: [S, S] });
      const { rows, cols } = axisLabels(svg);
      const stride = Number(rows[1]) - Number(rows[0]);
      expect([1, 2, 5, 10, 20, 50], `S ${S}`).toContain(stride);
      expect(rows).toEqual(Array.from({ length: Math.ceil(S / stride) }, (_, k) => String(k * stride)));
      expect(cols).toEqual(rows);
      // Neighbouring row labels sit at least one font height apart.
      const rowGroup = /<g class="query-labels" font-size="([^"]+)"[^>]*>([^]*?)<\/g>/.exec(svg)!;
      const ys = [...rowGroup[2].matchAll(/ y="([^"]+)"/g)].map((m) => Number(m[1]));
      for (let k = 1; k < ys.length; k++) expect(ys[k] - ys[k - 1]).toBeGreaterThanOrEqual(Number(rowGroup[1]));
    }
  });

  it('log scale: weights far below the largest get distinct colours; equal to the linear colour of their log position', () => {
    const data = Float32Array.from([1, 1e-3, 1e-6, 0]);
    const linear = cellFills(api.attentionHeatmapSVG({ data, dims: [1, 4] }));
    expect(linear.slice(1)).toEqual([DARK, DARK, DARK]);
    const log = cellFills(api.attentionHeatmapSVG({ data, dims: [1, 4] }, { scale: 'log', min: 1e-8 }));
    expect(new Set(log).size).toBe(4);
    expect(log[0]).toBe(BRIGHT);
    expect(log[3]).toBe(DARK);
    // log10 positions between min 1e-8 and max 1: 1e-3 sits at 5/8, 1e-6 at 2/8.
    const reference = cellFills(api.attentionHeatmapSVG({ data: Float32Array.from([1, 5 / 8, 2 / 8, 0]), dims: [1, 4] }, { max: 1 }));
    expect(log).toEqual(reference);
    // By default the scale starts at the smallest positive weight, so 1e-6 is the bottom colour and 1e-3 is not.
    const auto = cellFills(api.attentionHeatmapSVG({ data, dims: [1, 4] }, { scale: 'log' }));
    expect(auto).toEqual(cellFills(api.attentionHeatmapSVG({ data: Float32Array.from([1, 0.5, 0, 0]), dims: [1, 4] }, { max: 1 })));
    expect(api.attentionHeatmapSVG({ data, dims: [1, 4] }, { scale: 'log' })).toContain('>1e-6</text>');
  });

  it('row scale: every row\'s largest weight is the top colour, the rest relative to it', () => {
    const S = 5, data = causalWeights(S, 3);
    data.set([0.02, 0.01, 0.005, 0, 0], 4 * S);
    const fills = cellFills(api.attentionHeatmapSVG({ data, dims: [S, S] }, { scale: 'row' }));
    for (let i = 0; i < S; i++) {
      const row = Array.from(data.subarray(i * S, i * S + i + 1));
      expect(fills[i * S + row.indexOf(Math.max(...row))]).toBe(BRIGHT);
    }
    const reference = cellFills(api.attentionHeatmapSVG({ data: Float32Array.from([1, 0.5, 0.25, 0, 0]), dims: [1, 5] }, { max: 1 }));
    expect(fills.slice(4 * S)).toEqual(reference);
    // Linear, the last row is all but the bottom colour next to row 0's weight of 1.
    for (const fill of cellFills(api.attentionHeatmapSVG({ data, dims: [S, S] })).slice(4 * S, 4 * S + 3)) {
      hexRgb(fill).forEach((v, c) => expect(Math.abs(v - hexRgb(DARK)[c])).toBeLessThanOrEqual(8));
    }
  });

  it('checks the scale options', () => {
    const w = { data: Float32Array.from([0.5, 0.5, 0.2, 0.8]), dims: [2, 2] };
    expect(() => api.attentionHeatmapSVG(w, { scale: 'sqrt' as never })).toThrow(/Expected 'linear', 'log' or 'row' for opts\.scale but received "sqrt"/);
    expect(() => api.attentionHeatmapSVG(w, { scale: 1 as never })).toThrow(TypeError);
    expect(() => api.attentionHeatmapSVG(w, { scale: 'row', max: 1 })).toThrow(/no value with scale 'row'.* for opts\.max/);
    expect(() => api.attentionHeatmapSVG(w, { scale: 'log', min: 0 })).toThrow(/Expected a positive number below opts\.max \(0\.8\d*\) for opts\.min but received 0/);
    expect(() => api.attentionHeatmapSVG(w, { min: 1 })).toThrow(/opts\.min but received 1/);
    expect(() => api.attentionHeatmapSVG(w, { raster: 'yes' as never })).toThrow(/Expected a boolean for opts\.raster/);
  });

  it('draws a map beyond 64 tokens as one PNG image with the colours the rects would have', () => {
    const S = 12, data = causalWeights(S, 4);
    data[5 * S + 2] = NaN;
    for (const scale of ['linear', 'log', 'row'] as const) {
      const rects = cellFills(api.attentionHeatmapSVG({ data, dims: [S, S] }, { scale }));
      const svg = api.attentionHeatmapSVG({ data, dims: [S, S] }, { scale, raster: true });
      expect(cellFills(svg)).toHaveLength(0);
      const { width, height, rgb } = decodeRaster(svg);
      expect([width, height]).toEqual([S, S]);
      // The raster quantises the scale to 254 colours: within 2 per channel of the exact colour.
      rects.forEach((fill, k) => {
        const want = hexRgb(fill);
        if (fill === MASKED || fill === '#bbbbbb') expect(rgb[k], `cell ${k}`).toEqual(want);
        else for (let c = 0; c < 3; c++) expect(Math.abs(rgb[k][c] - want[c]), `${scale} cell ${k}`).toBeLessThanOrEqual(2);
      });
    }
    expect(decodeRaster(api.attentionHeatmapSVG({ data: causalWeights(65, 5), dims: [65, 65] })).width).toBe(65);
    expect(cellFills(api.attentionHeatmapSVG({ data: causalWeights(64, 5), dims: [64, 64] }))).toHaveLength(64 * 64);
  });

  it('stays under 1 MB at 512 tokens, even for weights that are pure noise', () => {
    const S = 512, next = seededRandom(6);
    const noise = Float32Array.from({ length: S * S }, () => next());
    for (const [name, data] of [['causal softmax', causalWeights(S, 7)], ['noise', noise]] as const) {
      for (const scale of ['linear', 'log', 'row'] as const) {
        const svg = api.attentionHeatmapSVG({ data, dims: [S, S] }, { scale, title: name });
        expect(svg.length, `${name}, ${scale}`).toBeLessThan(1_000_000);
        expect(decodeRaster(svg).rgb).toHaveLength(S * S);
      }
    }
  });
});

describe('example scripts', () => {
  const run = (...args: string[]) => spawnSync(process.execPath, args, { cwd: path.join(__dirname, '..'), encoding: 'utf8', timeout: 60_000 });

  it.each(['heatmap', 'demo'])('examples/%s.mjs: --help prints the usage and exits 0; an unknown flag prints it and exits 1', (name) => {
    const script = `examples/${name}.mjs`;
    for (const flag of ['--help', '-h']) {
      const help = run(script, flag);
      expect(help.status, help.stderr).toBe(0);
      expect(help.stdout).toContain(`Usage: node ${script}`);
      expect(help.stderr).toBe('');
    }
    const bad = run(script, '--no-such-flag');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/Unknown option '--no-such-flag'/);
    expect(bad.stderr).toContain(`Usage: node ${script}`);
  });

  it('examples/heatmap.mjs writes a 100-token map as a raster, and reports a bad layer without a stack trace', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'attn-heatmap-'));
    try {
      const out = path.join(dir, 'map.svg');
      const ok = run('examples/heatmap.mjs', '--tokens', '100', '--scale', 'log', '--out', out);
      expect(ok.status, ok.stderr).toBe(0);
      const svg = readFileSync(out, 'utf8');
      expect(decodeRaster(svg).width).toBe(100);
      expect(svg).toContain('log scale');
      const bad = run('examples/heatmap.mjs', '--layer', '9', '--out', out);
      expect(bad.status).toBe(1);
      // stderr may also carry the JS-fallback warning where the addon is not built.
      expect(bad.stderr).toContain('Expected an integer in [0, 2) for opts.layer but received 9');
      expect(bad.stderr).not.toMatch(/\n\s+at /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
