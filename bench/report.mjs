// Turns measured samples into figures, the console table, the results JSON and the SVG chart.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { units } from './workloads.mjs';

export const VARIANTS = ['native', 'js', 'ort'];
const VARIANT_NAMES = { native: 'native', js: 'JS', ort: 'onnxruntime' };
const COLORS = { native: '#2f6fdf', js: '#e8912d', ort: '#8a8f98' };

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Figures for one variant from its samples (seconds per op, as Benchmark.js reports them).
 * rate: GFLOP/s, GB/s or tokens/s; pctLimit: rate as a percentage of the measured machine limit.
 */
export function summarize(workload, samples, limits) {
  const sec = median(samples);
  const unit = units[workload.unit];
  const rate = (workload.amount / sec) * unit.scale;
  let limit = null;
  if (limits) {
    if (workload.unit === 'flops') limit = limits.peakGflops;
    else if (workload.unit === 'bytes') limit = limits.bandwidthGBps;
    else if (workload.unit === 'tokens') limit = (limits.bandwidthGBps * 1e9) / workload.bytesPerToken;
  }
  const sorted = [...samples].sort((a, b) => a - b);
  const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  return {
    samples: samples.length,
    medianMs: sec * 1e3,
    minMs: sorted[0] * 1e3,
    // Interquartile range relative to the median: the spread of this shared machine's noise.
    spreadPct: samples.length >= 4 ? ((q(0.75) - q(0.25)) / sec) * 100 : null,
    opsPerSec: 1 / sec,
    rate,
    rateUnit: unit.rate,
    limit,
    pctLimit: limit ? (rate / limit) * 100 : null,
  };
}

const fmt = (x, digits = 3) => {
  if (x === null || x === undefined || !Number.isFinite(x)) return '-';
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1000) return x.toFixed(0);
  return x.toPrecision(digits);
};

export const formatMs = (ms) => (ms < 0.1 ? `${fmt(ms * 1e3)} us` : `${fmt(ms)} ms`);
const formatRate = (s) => `${fmt(s.rate)} ${s.rateUnit}`;
const formatPct = (p) => (p === null || p === undefined ? '-' : `${p.toFixed(p < 10 ? 1 : 0)}%`);

function pad(s, n, right = false) {
  s = String(s);
  return right ? s.padStart(n) : s.padEnd(n);
}

/** The console table: one line per variant, skips and failed checks spelled out. */
export function formatTable(results) {
  const head = ['id', 'workload / variant', 'median', 'ops/s', 'rate', '% limit', 'speedup', 'check'];
  const rows = [];
  for (const r of results) {
    if (r.skipped) {
      rows.push([r.id, r.title, '', '', '', '', '', `skipped: ${r.skipped}`]);
      continue;
    }
    rows.push([r.id, r.title, '', '', '', '', '', r.note ?? '']);
    for (const v of VARIANTS) {
      const x = r.variants[v];
      if (!x) continue;
      const name = `  ${VARIANT_NAMES[v]}${x.label ? ` (${x.label})` : ''}`;
      if (x.skipped) {
        rows.push(['', name, '', '', '', '', '', `skipped: ${x.skipped}`]);
        continue;
      }
      if (x.error) {
        rows.push(['', name, '', '', '', '', '', `error: ${x.error}`]);
        continue;
      }
      const s = x.stats;
      let speed = '';
      if (v === 'native') {
        const parts = [];
        if (r.speedup?.vsJs) parts.push(`${fmt(r.speedup.vsJs)}x JS`);
        if (r.speedup?.vsOrt) parts.push(`${fmt(r.speedup.vsOrt)}x ort`);
        if (r.speedup?.vsBaseline) parts.push(`${fmt(r.speedup.vsBaseline.ratio)}x ${r.speedup.vsBaseline.id}`);
        speed = parts.join(', ');
      }
      let check = x.check ? (x.check.ok ? `ok ${x.check.detail}` : `MISMATCH ${x.check.detail}`) : '';
      if (x.rss) check = `${check ? `${check}; ` : ''}peak RSS ${fmt(x.rss.peakMB)} MB (+${fmt(x.rss.deltaMB)})`;
      rows.push(['', name, formatMs(s.medianMs), fmt(s.opsPerSec), formatRate(s), formatPct(s.pctLimit), speed, check]);
    }
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => String(row[i]).length)));
  const numeric = new Set([2, 3, 4, 5]);
  const line = (row) => row.map((c, i) => pad(c, i === row.length - 1 ? 0 : widths[i], numeric.has(i))).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** bench/results/<date>-<machine>.json unless an explicit path was given. */
export function resultsPath(dir, meta) {
  const date = meta.date.slice(0, 10);
  const cpu = meta.machine.cpu.toLowerCase().replace(/\(r\)|\(tm\)|cpu|processor|\d+-core/g, ' ')
    .replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  return path.join(dir, `${date}-${cpu || 'cpu'}-${meta.threads}t.json`);
}

export function writeJson(file, doc) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
}

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * Horizontal bars, one group per workload, one bar per variant. The axis is the percentage of the
 * machine's measured limit (FMA peak for FLOP workloads, read bandwidth for decode and tokens),
 * logarithmic so that JS at 1% and native at 80% are both readable. Without limits (native
 * addon not loaded) bars are relative to the fastest variant of each workload.
 */
export function renderChart(doc) {
  const rows = doc.workloads.filter((r) => !r.skipped && VARIANTS.some((v) => r.variants[v]?.stats));
  const hasLimits = rows.every((r) => VARIANTS.every((v) => !r.variants[v]?.stats || r.variants[v].stats.pctLimit !== null));
  const valueOf = (r, v) => {
    const s = r.variants[v]?.stats;
    if (!s) return null;
    if (hasLimits) return s.pctLimit;
    const best = Math.max(...VARIANTS.map((u) => r.variants[u]?.stats?.rate ?? 0));
    return (s.rate / best) * 100;
  };
  const values = rows.flatMap((r) => VARIANTS.map((v) => valueOf(r, v))).filter((p) => p > 0);
  const lo = 10 ** Math.max(-3, Math.floor(Math.log10(Math.min(...values, 100))));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(100, ...values)));
  const decades = [];
  for (let d = lo; d <= hi * 1.0001; d *= 10) decades.push(d);
  const names = rows.map((r) => `${r.id} ${r.title}`);
  const left = 20 + Math.ceil(Math.max(...names.map((n) => n.length)) * 6.8);
  const plotW = 520, barH = 13, gap = 3, groupGap = 16, top = 70;
  const x = (p) => left + (Math.log10(Math.max(p, lo) / lo) / Math.log10(hi / lo)) * plotW;
  let y = top;
  const parts = [];
  for (const r of rows) {
    const present = VARIANTS.filter((v) => r.variants[v]?.stats);
    const groupH = present.length * (barH + gap) - gap;
    parts.push(`<text x="${left - 10}" y="${y + groupH / 2 + 4}" text-anchor="end" class="w">${esc(`${r.id} ${r.title}`)}</text>`);
    for (const v of present) {
      const s = r.variants[v].stats;
      const val = valueOf(r, v);
      const w = Math.max(1, x(val) - left);
      const label = `${formatMs(s.medianMs)} · ${fmt(s.rate)} ${s.rateUnit}${hasLimits ? ` · ${formatPct(s.pctLimit)}` : ''}`;
      parts.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${COLORS[v]}"><title>${esc(`${VARIANT_NAMES[v]}: ${label}`)}</title></rect>`);
      parts.push(`<text x="${(left + w + 4).toFixed(1)}" y="${y + barH - 3}" class="v">${esc(label)}</text>`);
      y += barH + gap;
    }
    y += groupGap;
  }
  const height = y + 20;
  const width = left + plotW + 230;
  const grid = decades.map((d) => `<line x1="${x(d).toFixed(1)}" y1="${top - 8}" x2="${x(d).toFixed(1)}" y2="${y - groupGap}" class="g"/>` +
    `<text x="${x(d).toFixed(1)}" y="${top - 12}" text-anchor="middle" class="a">${+d.toPrecision(1)}%</text>`).join('');
  const legend = VARIANTS.map((v, i) => `<rect x="${left + i * 120}" y="${height - 16}" width="10" height="10" fill="${COLORS[v]}"/>` +
    `<text x="${left + i * 120 + 14}" y="${height - 7}" class="a">${VARIANT_NAMES[v]}</text>`).join('');
  const m = doc.meta;
  const axis = hasLimits
    ? `% of this machine's measured limit (log scale): FP32 FMA peak ${fmt(m.limits.peakGflops)} GFLOP/s, read bandwidth ${fmt(m.limits.bandwidthGBps)} GB/s`
    : '% of the fastest variant per workload (log scale; the native probe was not available)';
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height + 10}" viewBox="0 0 ${width} ${height + 10}" font-family="sans-serif">
<style>.w{font-size:12px;fill:#222}.v{font-size:10px;fill:#333}.a{font-size:10px;fill:#555}.g{stroke:#ddd;stroke-width:1}.t{font-size:14px;font-weight:bold;fill:#111}</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="20" class="t">${esc(`node-attention benchmark: ${m.machine.cpu}, ${m.threads} threads, Node ${m.node}, ${m.date.slice(0, 10)}`)}</text>
<text x="10" y="38" class="a">${esc(axis)}</text>
${grid}
${parts.join('\n')}
${legend}
</svg>
`;
}
