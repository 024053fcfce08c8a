// Attention weights as an SVG heatmap: rows are queries (top to bottom), columns are keys (left
// to right), each weight coloured on the viridis scale (linear, logarithmic, or relative to its
// row's largest weight), with ticks and labels on both axes and a colour bar. In a causal map the
// keys a query may not see (above the diagonal) are drawn grey, apart from the scale. Small maps
// draw one <rect> per weight, with the value as a tooltip; beyond 64 tokens the cells are one
// <image> holding a palette PNG (one byte a cell), so 512 tokens stay a few hundred KB where rects
// would take tens of MB. The output opens in any browser and converts with rsvg-convert or ImageMagick.
import { formatDims, rangeError, shapeError, typeError } from './errors';
import { encodePalettePng } from './png';
import type { Tensor } from './types';
import { checkOptions, checkTensor } from './validate';

/** How a weight maps to a colour; see HeatmapOptions.scale. */
export type HeatmapScale = 'linear' | 'log' | 'row';

export interface HeatmapOptions {
  /** Heading above the map. */
  title?: string;
  /**
   * Labels of the query rows (e.g. the tokens as text); default: positions. Labels longer than 16
   * characters are shortened on the axis; when the cells are too small for every label, every
   * 2nd, 5th, 10th, ... row gets a tick and its label.
   */
  queryLabels?: readonly string[];
  /** Labels of the key columns; default: the query labels when the map is square, else positions. */
  keyLabels?: readonly string[];
  /** Side of one cell in pixels. Default: 640 / max(Sq, Sk), clamped to [4, 32] ([1, 32] for a raster). */
  cellSize?: number;
  /** For 4-D weights [B, H, Sq, Sk] (an attention qkMatmulOutput): which batch entry. Default 0. */
  batch?: number;
  /** For 4-D weights: which head. Default 0. */
  head?: number;
  /**
   * 'linear' (default): colour proportional to the weight between min and max. 'log': to its
   * logarithm, so weights of 1e-4 and 1e-2 look different where linear shows both as the bottom
   * colour. 'row': each row divided by its own largest (unmasked) weight, so every query's
   * favourite key is the top colour however flat its row is.
   */
  scale?: HeatmapScale;
  /** Value of the top colour (linear and log). Default: the largest weight (at least the smallest positive float). */
  max?: number;
  /**
   * Value of the bottom colour (linear and log; below max, and > 0 for log). Default: 0 for
   * linear; for log the smallest positive weight, but at least max / 1e6. Smaller weights, and 0,
   * get the bottom colour.
   */
  min?: number;
  /**
   * Draw the cells above the diagonal (keys after the query) as masked, in light grey, so the
   * causal triangle stands out from weights that are merely small. Default: true when the map is
   * square and every weight above the diagonal is exactly 0.
   */
  causal?: boolean;
  /**
   * Draw the cells as one PNG <image> (no per-cell tooltips) instead of one <rect> each.
   * Default: when the map has more than 64 rows or columns.
   */
  raster?: boolean;
}

// Viridis sampled at 9 evenly spaced points (matplotlib's _viridis_data), linearly interpolated.
const VIRIDIS: readonly (readonly [number, number, number])[] = [
  [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
  [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
];

const MASKED_RGB = [0xee, 0xee, 0xee], NON_FINITE_RGB = [0xbb, 0xbb, 0xbb];

/** Colours the scale is quantised to in a raster; palette entries LEVELS and LEVELS + 1 are masked and not-finite. */
const LEVELS = 254;
const RASTER_ABOVE = 64;
const LABEL_CHARS = 16;

function rgb(t: number): number[] {
  const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x)), f = x - i;
  return VIRIDIS[i].map((v, k) => Math.round(v + (VIRIDIS[i + 1][k] - v) * f));
}

function hex(c: readonly number[]): string {
  return `#${c.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
}

function color(t: number): string {
  return hex(rgb(t));
}

const MASKED = hex(MASKED_RGB), NON_FINITE = hex(NON_FINITE_RGB);

/** The smallest of 1, 2, 5, 10, 20, 50, ... that is >= n. */
function niceStride(n: number): number {
  for (let p = 1; ; p *= 10) for (const m of [1, 2, 5]) if (m * p >= n) return m * p;
}

function shorten(label: string): string {
  const chars = Array.from(label);
  return chars.length > LABEL_CHARS ? `${chars.slice(0, LABEL_CHARS - 1).join('')}…` : label;
}

function formatValue(v: number): string {
  if (v === 0) return '0';
  return Math.abs(v) >= 1e-3 && Math.abs(v) < 1e4 ? String(Number(v.toPrecision(2))) : v.toExponential(1).replace('.0e', 'e');
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
 * @param opts title, labels, cell size, colour scale, raster
 * @returns the SVG text
 * @example
 * const w = model.attentionWeights(tokens, { layer: 0, head: 3 });
 * fs.writeFileSync('attention.svg', attentionHeatmapSVG(w, { title: 'layer 0, head 3', scale: 'log' }));
 */
export function attentionHeatmapSVG(weights: Tensor, opts?: HeatmapOptions): string {
  const t = checkTensor(weights, 'weights');
  const o = checkOptions(opts, 'opts', ['title', 'queryLabels', 'keyLabels', 'cellSize', 'batch', 'head', 'scale', 'max', 'min', 'causal', 'raster']);
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
  const raster = o.raster ?? Math.max(Sq, Sk) > RASTER_ABOVE;
  if (typeof raster !== 'boolean') throw typeError('opts.raster', 'a boolean', raster);
  const cell = o.cellSize ?? Math.min(32, Math.max(raster ? 1 : 4, Math.floor(640 / Math.max(Sq, Sk))));
  if (typeof cell !== 'number' || !(cell > 0) || !Number.isFinite(cell)) throw rangeError('opts.cellSize', 'a positive number', String(cell));
  const scale = o.scale ?? 'linear';
  if (typeof scale !== 'string') throw typeError('opts.scale', "'linear', 'log' or 'row'", scale);
  if (scale !== 'linear' && scale !== 'log' && scale !== 'row') throw rangeError('opts.scale', "'linear', 'log' or 'row'", JSON.stringify(scale));
  let causal = o.causal;
  if (causal === undefined) {
    causal = Sq === Sk;
    for (let i = 0; i < Sq && causal; i++) for (let j = i + 1; j < Sk && causal; j++) causal = values[i * Sk + j] === 0;
  }
  if (typeof causal !== 'boolean') throw typeError('opts.causal', 'a boolean', causal);
  const masked = (i: number, j: number): boolean => causal === true && j > i;

  // level(v, i) places a finite weight of row i on the colour scale, 0 (bottom) to 1 (top).
  let level: (v: number, i: number) => number;
  let barLabels: [number, string][];
  if (scale === 'row') {
    for (const name of ['max', 'min'] as const) {
      if (o[name] !== undefined) throw rangeError(`opts.${name}`, "no value with scale 'row' (each row is scaled to its own largest weight)", String(o[name]));
    }
    const rowMax = new Float64Array(Sq);
    for (let i = 0; i < Sq; i++) {
      for (let j = 0; j < Sk; j++) {
        const v = values[i * Sk + j];
        if (!masked(i, j) && Number.isFinite(v) && v > rowMax[i]) rowMax[i] = v;
      }
    }
    level = (v, i) => (rowMax[i] > 0 ? v / rowMax[i] : 0);
    barLabels = [[0, '0'], [0.5, '0.5'], [1, '1 = row max']];
  } else {
    let max = o.max;
    if (max === undefined) {
      let largest = Number.MIN_VALUE;
      for (const v of values) if (v > largest) largest = v;
      max = largest;
    }
    if (typeof max !== 'number' || !(max > 0) || !Number.isFinite(max)) throw rangeError('opts.max', 'a positive finite number', String(max));
    const top = max;
    let min = o.min;
    if (min === undefined && scale === 'log') {
      // The data's own range, but no more than 6 decades, so one stray tiny weight cannot flatten the rest.
      let smallest = top;
      for (let i = 0; i < Sq; i++) {
        for (let j = 0; j < Sk; j++) {
          const v = values[i * Sk + j];
          if (!masked(i, j) && v > 0 && v < smallest) smallest = v;
        }
      }
      min = smallest < top ? Math.max(smallest, top * 1e-6) : top * 1e-6;
    }
    min ??= 0;
    const expected = scale === 'log' ? `a positive number below opts.max (${top})` : `a finite number below opts.max (${top})`;
    if (typeof min !== 'number') throw typeError('opts.min', expected, min);
    if (!(min < top) || !Number.isFinite(min) || (scale === 'log' && !(min > 0))) throw rangeError('opts.min', expected, String(min));
    if (scale === 'log') {
      const low = Math.log(min), span = Math.log(top) - low;
      level = (v) => (v > 0 ? (Math.log(v) - low) / span : 0);
      barLabels = [[0, formatValue(min)], [0.5, formatValue(Math.sqrt(min * top))], [1, formatValue(top)]];
    } else {
      level = (v) => (v - min) / (top - min);
      barLabels = [[0, formatValue(min)], [0.5, formatValue((min + top) / 2)], [1, formatValue(top)]];
    }
  }

  // Layout: tick labels left and top, sized from the longest shown; the colour bar on the right.
  // A label needs about a font height of room across its axis, so small cells get every n-th tick.
  const font = Math.max(8, Math.min(12, cell * 0.8));
  const stride = niceStride(Math.min(Math.ceil((font + 2) / cell), Math.max(Sq, Sk)));
  const ticks = (n: number): number[] => Array.from({ length: Math.ceil(n / stride) }, (_, k) => k * stride);
  const rowTicks = ticks(Sq), colTicks = ticks(Sk);
  const width = (labels: string[], shown: number[]): number => shown.reduce((m, i) => Math.max(m, Array.from(shorten(labels[i])).length), 1) * font * 0.6;
  const rowLabelWidth = width(rowLabels, rowTicks), colLabelHeight = width(colLabels, colTicks);
  const left = 30 + rowLabelWidth;
  const top = (o.title ? 28 : 8) + 24 + colLabelHeight;
  const mapW = Sk * cell, mapH = Sq * cell;
  const totalW = left + mapW + 110, totalH = top + Math.max(60, mapH) + 30;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${totalW}" height="${totalH}" viewBox="0 0 ${totalW} ${totalH}" font-family="sans-serif">`,
    `<rect width="${totalW}" height="${totalH}" fill="#ffffff"/>`,
  ];
  if (o.title) out.push(`<text x="${left}" y="20" font-size="14" font-weight="bold">${escapeXml(o.title as string)}</text>`);
  out.push(`<text x="${left}" y="${top - 12 - colLabelHeight}" font-size="11" fill="#444">keys →</text>`);
  out.push(`<text x="12" y="${top + mapH / 2}" font-size="11" fill="#444" transform="rotate(-90 12 ${top + mapH / 2})" text-anchor="middle">← queries</text>`);
  if (raster) {
    const palette = new Uint8Array(3 * (LEVELS + 2));
    for (let k = 0; k < LEVELS; k++) palette.set(rgb(k / (LEVELS - 1)), 3 * k);
    palette.set([...MASKED_RGB, ...NON_FINITE_RGB], 3 * LEVELS);
    const pixels = new Uint8Array(Sq * Sk);
    for (let i = 0; i < Sq; i++) {
      for (let j = 0; j < Sk; j++) {
        const v = values[i * Sk + j];
        pixels[i * Sk + j] = masked(i, j) ? LEVELS : Number.isFinite(v) ? Math.round(Math.min(1, Math.max(0, level(v, i))) * (LEVELS - 1)) : LEVELS + 1;
      }
    }
    const png = encodePalettePng(Sk, Sq, pixels, palette).toString('base64');
    // pixelated: each weight stays a sharp square instead of being blurred into its neighbours.
    out.push(`<image x="${left}" y="${top}" width="${mapW}" height="${mapH}" preserveAspectRatio="none" image-rendering="optimizeSpeed" style="image-rendering:pixelated" xlink:href="data:image/png;base64,${png}"/>`);
  } else {
    out.push('<g shape-rendering="crispEdges">');
    for (let i = 0; i < Sq; i++) {
      for (let j = 0; j < Sk; j++) {
        const v = values[i * Sk + j];
        const fill = masked(i, j) ? MASKED : Number.isFinite(v) ? color(level(v, i)) : NON_FINITE;
        out.push(`<rect x="${left + j * cell}" y="${top + i * cell}" width="${cell}" height="${cell}" fill="${fill}"><title>query ${escapeXml(rowLabels[i])} → key ${escapeXml(colLabels[j])}: ${v.toPrecision(4)}</title></rect>`);
      }
    }
    out.push('</g>');
  }
  const tickPath = [...rowTicks.map((i) => `M${left} ${top + i * cell + cell / 2}h-4`), ...colTicks.map((j) => `M${left + j * cell + cell / 2} ${top}v-4`)];
  out.push(`<path d="${tickPath.join('')}" stroke="#444444" stroke-width="1"/>`);
  out.push(`<g class="query-labels" font-size="${font}" text-anchor="end" dominant-baseline="central">`);
  for (const i of rowTicks) out.push(`<text x="${left - 6}" y="${top + i * cell + cell / 2}">${escapeXml(shorten(rowLabels[i]))}</text>`);
  out.push('</g>', `<g class="key-labels" font-size="${font}" dominant-baseline="central">`);
  for (const j of colTicks) {
    const x = left + j * cell + cell / 2, y = top - 6;
    out.push(`<text x="${x}" y="${y}" transform="rotate(-90 ${x} ${y})">${escapeXml(shorten(colLabels[j]))}</text>`);
  }
  out.push('</g>');
  // Colour bar: the bottom colour at the bottom, the top colour at the top.
  const barX = left + mapW + 20, barH = Math.max(60, mapH), steps = 32;
  for (let k = 0; k < steps; k++) {
    out.push(`<rect x="${barX}" y="${top + (barH * (steps - 1 - k)) / steps}" width="14" height="${barH / steps + 0.5}" fill="${color((k + 0.5) / steps)}"/>`);
  }
  for (const [frac, label] of barLabels) {
    out.push(`<text x="${barX + 18}" y="${top + barH * (1 - frac)}" font-size="10" dominant-baseline="central">${label}</text>`);
  }
  if (scale === 'log') out.push(`<text x="${barX}" y="${top - 8}" font-size="10">log scale</text>`);
  if (causal) {
    out.push(`<rect x="${barX}" y="${top + barH + 8}" width="14" height="14" fill="${MASKED}" stroke="#999999" stroke-width="0.5"/>`);
    out.push(`<text x="${barX + 18}" y="${top + barH + 15}" font-size="10" dominant-baseline="central">masked</text>`);
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
