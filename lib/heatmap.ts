// Attention weights as an SVG heatmap: rows are queries (top to bottom), columns are keys (left
// to right), one square per weight coloured on the viridis scale, with a colour bar. In a causal
// map the keys a query may not see (above the diagonal) are drawn grey, apart from the scale. Plain string building, no dependencies; the output
// opens in any browser and converts with rsvg-convert or ImageMagick.
import { formatDims, rangeError, shapeError, typeError } from './errors';
import type { Tensor } from './types';
import { checkOptions, checkTensor } from './validate';

export interface HeatmapOptions {
  /** Heading above the map. */
  title?: string;
  /** Labels of the query rows (e.g. the tokens as text); default: positions. */
  queryLabels?: readonly string[];
  /** Labels of the key columns; default: the query labels when the map is square, else positions. */
  keyLabels?: readonly string[];
  /** Side of one cell in pixels. Default: 640 / max(Sq, Sk), clamped to [4, 32]. */
  cellSize?: number;
  /** For 4-D weights [B, H, Sq, Sk] (an attention qkMatmulOutput): which batch entry. Default 0. */
  batch?: number;
  /** For 4-D weights: which head. Default 0. */
  head?: number;
  /** Value of the top colour. Default: the largest weight (at least the smallest positive float). */
  max?: number;
  /**
   * Draw the cells above the diagonal (keys after the query) as masked, in light grey, so the
   * causal triangle stands out from weights that are merely small. Default: true when the map is
   * square and every weight above the diagonal is exactly 0.
   */
  causal?: boolean;
}

// Viridis sampled at 9 evenly spaced points (matplotlib's _viridis_data), linearly interpolated.
const VIRIDIS: readonly (readonly [number, number, number])[] = [
  [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
  [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
];

const MASKED = '#eeeeee';

function color(t: number): string {
  const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x)), f = x - i;
  const c = VIRIDIS[i].map((v, k) => Math.round(v + (VIRIDIS[i + 1][k] - v) * f));
  return `#${c.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] as string);
}

function indexOption(value: unknown, name: string, limit: number): number {
  if (value === undefined) return 0;
  if (typeof value !== 'number') throw typeError(name, 'an integer', value);
  if (!Number.isInteger(value) || value < 0 || value >= limit) throw rangeError(name, `an integer in [0, ${limit})`, String(value));
  return value;
}

function labelsOption(value: unknown, name: string, count: number): string[] | null {
  if (value === undefined) return null;
  if (!Array.isArray(value) || !value.every((s) => typeof s === 'string')) throw typeError(name, 'an array of strings', value);
  if (value.length !== count) throw shapeError(name, `${count} labels`, `${value.length}`);
  return value as string[];
}

/**
 * Renders attention weights as an SVG document.
 * @param weights [Sq, Sk] probabilities (e.g. GPT.attentionWeights), or [B, H, Sq, Sk] as returned
 *   in `qkMatmulOutput` by attention() with qkMatmulOutputMode 3 (pick one with opts.batch / opts.head)
 * @param opts title, labels, cell size, colour scale
 * @returns the SVG text
 * @example
 * const w = model.attentionWeights(tokens, { layer: 0, head: 3 });
 * fs.writeFileSync('attention.svg', attentionHeatmapSVG(w, { title: 'layer 0, head 3' }));
 */
export function attentionHeatmapSVG(weights: Tensor, opts?: HeatmapOptions): string {
  const t = checkTensor(weights, 'weights');
  const o = checkOptions(opts, 'opts', ['title', 'queryLabels', 'keyLabels', 'cellSize', 'batch', 'head', 'max', 'causal']);
  let Sq: number, Sk: number, offset = 0;
  if (t.dims.length === 2) {
    [Sq, Sk] = t.dims;
  } else if (t.dims.length === 4) {
    const [B, H] = t.dims;
    [, , Sq, Sk] = t.dims;
    offset = (indexOption(o.batch, 'opts.batch', B) * H + indexOption(o.head, 'opts.head', H)) * Sq * Sk;
  } else {
    throw shapeError('weights', 'dims [Sq, Sk] or [B, H, Sq, Sk]', `dims ${formatDims(t.dims)}`);
  }
  const values = t.data.subarray(offset, offset + Sq * Sk);
  const rowLabels = labelsOption(o.queryLabels, 'opts.queryLabels', Sq) ?? Array.from({ length: Sq }, (_, i) => String(i));
  const colLabels = labelsOption(o.keyLabels, 'opts.keyLabels', Sk) ?? (Sq === Sk && o.queryLabels ? rowLabels : Array.from({ length: Sk }, (_, j) => String(j)));
  if (o.title !== undefined && typeof o.title !== 'string') throw typeError('opts.title', 'a string', o.title);
  const cell = o.cellSize ?? Math.min(32, Math.max(4, Math.floor(640 / Math.max(Sq, Sk))));
  if (typeof cell !== 'number' || !(cell > 0) || !Number.isFinite(cell)) throw rangeError('opts.cellSize', 'a positive number', String(cell));
  let max = o.max;
  if (max === undefined) {
    let largest = Number.MIN_VALUE;
    for (const v of values) if (v > largest) largest = v;
    max = largest;
  }
  if (typeof max !== 'number' || !(max > 0) || !Number.isFinite(max)) throw rangeError('opts.max', 'a positive finite number', String(max));
  let causal = o.causal;
  if (causal === undefined) {
    causal = Sq === Sk;
    for (let i = 0; i < Sq && causal; i++) for (let j = i + 1; j < Sk && causal; j++) causal = values[i * Sk + j] === 0;
  }
  if (typeof causal !== 'boolean') throw typeError('opts.causal', 'a boolean', causal);

  // Layout: labels left and top, sized from the longest label; the colour bar on the right.
  const font = Math.max(6, Math.min(12, cell * 0.8));
  const longest = (labels: string[]): number => labels.reduce((m, s) => Math.max(m, s.length), 1) * font * 0.6;
  const showLabels = cell >= 6;
  const left = 24 + (showLabels ? longest(rowLabels) : 0);
  const top = (o.title ? 28 : 8) + 18 + (showLabels ? longest(colLabels) : 0);
  const width = left + Sk * cell + 90, height = top + Math.max(60, Sq * cell) + 30;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
  ];
  if (o.title) out.push(`<text x="${left}" y="20" font-size="14" font-weight="bold">${escapeXml(o.title as string)}</text>`);
  out.push(`<text x="${left}" y="${top - 6 - (showLabels ? longest(colLabels) : 0)}" font-size="11" fill="#444">keys →</text>`);
  out.push(`<text x="12" y="${top + (Sq * cell) / 2}" font-size="11" fill="#444" transform="rotate(-90 12 ${top + (Sq * cell) / 2})" text-anchor="middle">← queries</text>`);
  out.push('<g shape-rendering="crispEdges">');
  for (let i = 0; i < Sq; i++) {
    for (let j = 0; j < Sk; j++) {
      const v = values[i * Sk + j];
      const fill = causal && j > i ? MASKED : Number.isFinite(v) ? color(v / max) : '#bbbbbb';
      out.push(`<rect x="${left + j * cell}" y="${top + i * cell}" width="${cell}" height="${cell}" fill="${fill}"><title>query ${escapeXml(rowLabels[i])} → key ${escapeXml(colLabels[j])}: ${v.toPrecision(4)}</title></rect>`);
    }
  }
  out.push('</g>');
  if (showLabels) {
    for (let i = 0; i < Sq; i++) {
      out.push(`<text x="${left - 4}" y="${top + i * cell + cell / 2}" font-size="${font}" text-anchor="end" dominant-baseline="central">${escapeXml(rowLabels[i])}</text>`);
    }
    for (let j = 0; j < Sk; j++) {
      const x = left + j * cell + cell / 2, y = top - 4;
      out.push(`<text x="${x}" y="${y}" font-size="${font}" transform="rotate(-90 ${x} ${y})" dominant-baseline="central">${escapeXml(colLabels[j])}</text>`);
    }
  }
  // Colour bar: 0 at the bottom, max at the top.
  const barX = left + Sk * cell + 20, barH = Math.max(60, Sq * cell), steps = 32;
  for (let s = 0; s < steps; s++) {
    out.push(`<rect x="${barX}" y="${top + (barH * (steps - 1 - s)) / steps}" width="14" height="${barH / steps + 0.5}" fill="${color((s + 0.5) / steps)}"/>`);
  }
  for (const [frac, label] of [[0, '0'], [0.5, (max / 2).toPrecision(2)], [1, max.toPrecision(2)]] as const) {
    out.push(`<text x="${barX + 18}" y="${top + barH * (1 - frac)}" font-size="10" dominant-baseline="central">${label}</text>`);
  }
  if (causal) {
    out.push(`<rect x="${barX}" y="${top + barH + 8}" width="14" height="14" fill="${MASKED}" stroke="#999999" stroke-width="0.5"/>`);
    out.push(`<text x="${barX + 18}" y="${top + barH + 15}" font-size="10" dominant-baseline="central">masked</text>`);
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
