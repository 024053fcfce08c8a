// The attention heatmap SVG: one cell per weight in row-major order (rows = queries), viridis
// colours scaled to the largest weight, escaped labels, and a picture of a real model's head.
import { describe, expect, it } from 'vitest';
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
