// Writes an attention-weights heatmap (SVG) for one layer and head of a GPT-2 model.
//   node examples/heatmap.mjs [--model DIR] [--layer N] [--head N] [--out FILE]
// Without --model it uses a small random GPT (weights std 0.1, so the heads are not uniform) and
// a prompt that repeats a 6-token phrase, which makes position- and token-matching heads visible.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { GPT, attentionHeatmapSVG, backendInfo } from '../dist/index.mjs';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    layer: { type: 'string', default: '1' },
    head: { type: 'string', default: '0' },
    out: { type: 'string', default: 'attention-heatmap.svg' },
  },
});

const model = values.model
  ? await GPT.load(values.model)
  : GPT.random({ vocab_size: 512, n_positions: 64, n_embd: 128, n_layer: 2, n_head: 4 }, 7, { std: 0.1 });
const phrase = [11, 302, 45, 87, 160, 9];
const tokens = Int32Array.from({ length: 24 }, (_, i) => phrase[i % phrase.length] % model.config.vocab_size);
const layer = Number(values.layer), head = Number(values.head);

const weights = model.attentionWeights(tokens, { layer, head });
const labels = Array.from(tokens, (t, i) => `${i}:${t}`);
const svg = attentionHeatmapSVG(weights, { title: `layer ${layer}, head ${head} (${backendInfo().backend} backend)`, queryLabels: labels });
writeFileSync(values.out, svg);
console.log(`wrote ${values.out}: ${tokens.length} x ${tokens.length} attention weights of layer ${layer}, head ${head}`);
