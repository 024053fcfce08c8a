// Every JavaScript block of README.md runs, as written, against the built package: each is saved in
// a fresh project folder whose node_modules/node-attention is this checkout, then run by Node in a
// child process (ES module when it uses import or top-level await, CommonJS otherwise). Blocks that
// load a model find, written first in the Hugging Face layout, a small GPT-2 checkpoint in ./gpt2-tiny
// and a small Llama with a tokenizer.json (test/fixtures/tokenizer) in ./tiny-llama.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api } from './helpers/backends';

const root = path.join(__dirname, '..');
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');

/** The fenced ```js / ```javascript / ```mjs blocks, with the line each starts on. */
function jsBlocks(markdown: string): { line: number; code: string }[] {
  const blocks: { line: number; code: string }[] = [];
  const fence = /^```(js|javascript|mjs|cjs)\s*\n([\s\S]*?)^```\s*$/gm;
  for (let m = fence.exec(markdown); m; m = fence.exec(markdown)) {
    blocks.push({ line: markdown.slice(0, m.index).split('\n').length, code: m[2] });
  }
  return blocks;
}

const blocks = jsBlocks(readme);
let project = '';

beforeAll(async () => {
  project = fs.mkdtempSync(path.join(os.tmpdir(), 'node-attention-readme-'));
  fs.mkdirSync(path.join(project, 'node_modules'));
  fs.symlinkSync(root, path.join(project, 'node_modules', 'node-attention'), 'dir');
  const model = api.GPT.random({ vocab_size: 64, n_positions: 64, n_embd: 32, n_layer: 2, n_head: 4 }, 7);
  await model.save(path.join(project, 'gpt2-tiny'));
  const llama = api.Llama.random({ vocab_size: 38, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 1,
    num_attention_heads: 4, max_position_embeddings: 32 }, 3, { std: 0.5 });
  await llama.save(path.join(project, 'tiny-llama'));
  fs.copyFileSync(path.join(__dirname, 'fixtures', 'tokenizer', 'tokenizer.json'), path.join(project, 'tiny-llama', 'tokenizer.json'));
});

afterAll(() => {
  if (project) fs.rmSync(project, { recursive: true, force: true });
});

describe('README.md', () => {
  it('has JavaScript examples to run', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(4);
  });

  it.each(blocks.map((b) => [b.line, b.code] as const))('the block at line %i runs', (line, code) => {
    const esm = /^\s*import\s|^\s*export\s|\bawait\b/m.test(code) && !/\brequire\(/.test(code);
    const file = path.join(project, `block-${line}.${esm ? 'mjs' : 'cjs'}`);
    fs.writeFileSync(file, code);
    const result = spawnSync(process.execPath, [file], { cwd: project, encoding: 'utf8', timeout: 120_000 });
    expect(result.signal, `README line ${line}: killed by ${result.signal}\n${result.stderr}`).toBeNull();
    expect(result.status, `README line ${line} failed:\n${result.stderr}\n${result.stdout}`).toBe(0);
  }, 150_000);
});
