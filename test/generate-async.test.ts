// generateAsync and stream on both backends: the same tokens as generate (single prompts, batches,
// text), abort at the next step with the signal's reason and the model usable afterwards, many
// concurrent calls on one model equal to sequential ones, early exit from a stream, a model in a
// worker thread, and the errors for bad options. (The event-loop bound lives in
// test/generate-async.timing.ts; memory over 10k generated tokens in test/memory.test.ts.)
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { api, forEachBackend } from './helpers/backends';

const GPT_CONFIG = { vocab_size: 50, n_positions: 64, n_embd: 32, n_layer: 2, n_head: 4 };
const LLAMA = path.join(__dirname, 'fixtures', 'llama');
const PROMPTS = [[7], [3, 9, 27], [11, 4, 40, 2, 33, 18]];
const NEW = 12;

// Large weights spread the logits, so greedy decoding moves between tokens (see batched-generate).
const gpt = () => api.GPT.random(GPT_CONFIG, 1234, { std: 0.5 });
const ids = (a: Int32Array | readonly number[]) => Array.from(a);

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

forEachBackend('generateAsync and stream', () => {
  describe.each([
    ['GPT', async () => gpt()],
    ['Llama gqa', () => api.loadModel(path.join(LLAMA, 'gqa'))],
  ] as const)('%s', (_, make) => {
    it('generateAsync gives generate\'s tokens, for one prompt and for a batch, greedy and sampled', async () => {
      const m = await make();
      expect(ids(await m.generateAsync(PROMPTS[1], { maxNewTokens: NEW }))).toEqual(ids(m.generate(PROMPTS[1], { maxNewTokens: NEW })));
      const batch = await m.generateAsync(PROMPTS, { maxNewTokens: NEW });
      expect(batch.map(ids)).toEqual(m.generate(PROMPTS, { maxNewTokens: NEW }).map(ids));
      const sampled = { maxNewTokens: NEW, temperature: 0.9, topK: 20, seed: 5 };
      expect(ids(await m.generateAsync(PROMPTS[2], sampled))).toEqual(ids(m.generate(PROMPTS[2], sampled)));
    });

    it('stream yields generate\'s tokens one by one, as they are made', async () => {
      const m = await make();
      const seen: number[] = [];
      const streamed = await collect(m.stream(PROMPTS[2], { maxNewTokens: NEW, onToken: (t) => { seen.push(t); } }));
      expect(streamed).toEqual(ids(m.generate(PROMPTS[2], { maxNewTokens: NEW })));
      expect(seen).toEqual(streamed);
    });

    it('many concurrent generateAsync calls on one model equal the same calls made one after another', async () => {
      const m = await make();
      const calls = Array.from({ length: 8 }, (_, i) => ({ prompt: PROMPTS[i % 3], opts: { maxNewTokens: NEW, temperature: i % 2, seed: i } }));
      const sequential = calls.map((c) => ids(m.generate(c.prompt, c.opts)));
      const together = await Promise.all(calls.map((c) => m.generateAsync(c.prompt, c.opts)));
      expect(together.map(ids)).toEqual(sequential);
    });

    it('an abort stops at the next step, rejects with the signal\'s reason, and leaves the model usable', async () => {
      const m = await make();
      const expected = ids(m.generate(PROMPTS[1], { maxNewTokens: NEW }));
      const controller = new AbortController(), reason = new Error('enough');
      const produced: number[] = [];
      const run = m.generateAsync(PROMPTS[1], {
        maxNewTokens: NEW, eosTokenId: null, signal: controller.signal,
        onToken: (t) => { produced.push(t); if (produced.length === 3) controller.abort(reason); },
      });
      await expect(run).rejects.toBe(reason);
      expect(produced).toEqual(expected.slice(0, 3));
      // A stream stops the same way.
      const streamController = new AbortController();
      const got: number[] = [];
      await expect((async () => {
        for await (const t of m.stream(PROMPTS[1], { maxNewTokens: NEW, signal: streamController.signal })) {
          got.push(t);
          if (got.length === 2) streamController.abort();
        }
      })()).rejects.toMatchObject({ name: 'AbortError' });
      expect(got).toEqual(expected.slice(0, 2));
      expect(ids(await m.generateAsync(PROMPTS[1], { maxNewTokens: NEW }))).toEqual(expected);
      expect(ids(m.generate(PROMPTS[1], { maxNewTokens: NEW }))).toEqual(expected);
    });

    it('an already aborted signal rejects before any step', async () => {
      const m = await make();
      const reason = new Error('no');
      await expect(m.generateAsync(PROMPTS[0], { maxNewTokens: NEW, signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    });

    it('leaving a stream early frees it; the model goes on', async () => {
      const m = await make();
      const expected = ids(m.generate(PROMPTS[0], { maxNewTokens: NEW }));
      const first: number[] = [];
      for await (const t of m.stream(PROMPTS[0], { maxNewTokens: NEW })) {
        first.push(t);
        if (first.length === 4) break;
      }
      expect(first).toEqual(expected.slice(0, 4));
      expect(ids(await m.generateAsync(PROMPTS[0], { maxNewTokens: NEW }))).toEqual(expected);
    });
  });

  it('stream of a string prompt yields the text generateText returns, piece by piece', async () => {
    // A random model over the vocabulary of the fixture tokenizer (38 tokens), saved beside it.
    const folder = await fsp.mkdtemp(path.join(os.tmpdir(), 'attn-stream-'));
    await api.GPT.random({ ...GPT_CONFIG, vocab_size: 38 }, 9, { std: 0.5 }).save(folder);
    await fsp.copyFile(path.join(__dirname, 'fixtures', 'tokenizer', 'tokenizer.json'), path.join(folder, 'tokenizer.json'));
    const m = await api.loadModel(folder);
    await fsp.rm(folder, { recursive: true });
    const pieces = await collect(m.stream('the cat', { maxNewTokens: NEW }));
    expect(pieces.every((p) => typeof p === 'string')).toBe(true);
    expect(pieces.join('')).toBe(m.generateText('the cat', { maxNewTokens: NEW }));
  });

  it('rejects a bad signal, bad options and a text prompt without a tokenizer', async () => {
    const m = gpt();
    await expect(m.generateAsync([1], { maxNewTokens: 2, signal: 'stop' as never })).rejects.toThrow(TypeError);
    await expect(m.generateAsync([1], { maxNewTokens: -1 })).rejects.toThrow(RangeError);
    await expect(collect(m.stream('text', { maxNewTokens: 2 }))).rejects.toThrow(/needs a tokenizer/);
    expect(() => m.generate([1], { maxNewTokens: 2, signal: new AbortController().signal } as never)).toThrow(/signal/);
  });
});

describe('a model in a worker thread', () => {
  it('generates there what it generates here', async () => {
    const expected = ids(gpt().generate(PROMPTS[2], { maxNewTokens: NEW }));
    const dist = path.join(__dirname, '..', 'dist', 'index.js');
    const worker = new Worker(`
      const { parentPort, workerData } = require('node:worker_threads');
      const api = require(workerData.dist);
      const m = api.GPT.random(workerData.config, 1234, { std: 0.5 });
      m.generateAsync(workerData.prompt, { maxNewTokens: workerData.n })
        .then((out) => parentPort.postMessage({ backend: api.backendInfo().backend, out: Array.from(out) }));
    `, { eval: true, workerData: { dist, config: GPT_CONFIG, prompt: PROMPTS[2], n: NEW } });
    const result = await new Promise<{ backend: string; out: number[] }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    expect(result.backend).toBe(api.backendInfo().nativeLoaded ? 'native' : 'js');
    expect(result.out).toEqual(expected);
  });
});
