// Writes an attention-weights heatmap (SVG) for one layer and head of a GPT-2 model.
//   node examples/heatmap.mjs [--model DIR] [--layer N] [--head N] [--tokens N] [--scale S] [--out FILE]
// Without --model it uses a small random GPT (weights std 0.1, so the heads are not uniform) and
// a prompt that repeats a 6-token phrase, which makes position- and token-matching heads visible.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const USAGE = `Usage: node examples/heatmap.mjs [options]

Writes an SVG heatmap of one attention head of a GPT-2 model over a prompt that repeats a
6-token phrase (rows: queries, columns: keys).

Options:
  --model DIR    a GPT-2 folder (config.json + model.safetensors); default: a small random GPT
  --layer N      layer index (default 1)
  --head N       head index (default 0)
  --tokens N     prompt length (default 24); beyond 64 the map is drawn as one PNG image
  --scale S      colour scale: linear, log or row (each row relative to its largest weight; default)
  --out FILE     output file (default attention-heatmap.svg)
  -h, --help     print this help and exit
`;

/** Prints `message` and the usage to stderr and exits 1. */
function fail(message) {
  process.stderr.write(`${message}\n\n${USAGE}`);
  process.exit(1);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      model: { type: 'string' },
      layer: { type: 'string', default: '1' },
      head: { type: 'string', default: '0' },
      tokens: { type: 'string', default: '24' },
      scale: { type: 'string', default: 'row' },
      out: { type: 'string', default: 'attention-heatmap.svg' },
      help: { type: 'boolean', short: 'h' },
    },
  }));
} catch (err) {
  fail(err.message);
}
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const integer = (name) => {
  const text = values[name];
  if (!/^\d+$/.test(text)) fail(`--${name} takes a non-negative integer, not ${JSON.stringify(text)}`);
  return Number(text);
};
const layer = integer('layer'), head = integer('head'), length = integer('tokens');
if (length < 1) fail('--tokens takes at least 1');

// Imported after the arguments are read, so --help works before the package is built.
const { GPT, attentionHeatmapSVG, backendInfo } = await import('../dist/index.mjs');
try {
  const model = values.model
    ? await GPT.load(values.model)
    : GPT.random({ vocab_size: 512, n_positions: Math.max(64, length), n_embd: 128, n_layer: 2, n_head: 4 }, 7, { std: 0.1 });
  const phrase = [11, 302, 45, 87, 160, 9];
  const tokens = Int32Array.from({ length }, (_, i) => phrase[i % phrase.length] % model.config.vocab_size);
  const weights = model.attentionWeights(tokens, { layer, head });
  const labels = Array.from(tokens, (t, i) => `${i}:${t}`);
  const title = `layer ${layer}, head ${head}, ${values.scale} scale (${backendInfo().backend} backend)`;
  writeFileSync(values.out, attentionHeatmapSVG(weights, { title, queryLabels: labels, scale: values.scale }));
  console.log(`wrote ${values.out}: ${length} x ${length} attention weights of layer ${layer}, head ${head}`);
} catch (err) {
  // The library's messages name the bad value (a layer out of range, an unknown scale, a broken folder).
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
}
