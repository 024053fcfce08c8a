// generateAsync and stream keep the event loop responsive (the issue's bound: "While a long
// generation runs, the event loop keeps ticking (no gap over 20 ms)"): with the native backend each
// decode step is one job on the libuv pool, so during a generation of 1.5 s or more a setTimeout(0)
// loop on the main thread never waits 20 ms, and the tokens are generate's.
//
// The model is GPT-2 small's body (768 wide, 12 layers, 12 heads) with an 8192-token vocabulary,
// random weights with std 0.5 so greedy decoding moves between tokens instead of repeating one.
// Measured (2-core AMD EPYC VM, 7 runs): a step takes 10-16 ms, the generation (120-210 tokens)
// 2-2.7 s; the largest gap between ticks is 5.5-17 ms. That margin is the OS scheduler's: the
// step's team uses both cores, and a timer loop beside two busy loops, with no generation at all,
// sees gaps of up to 42 ms on this VM. Made to block the main thread once per token (a one-token
// synchronous generate in onToken or in the stream loop) the largest gap is 25-150 ms and both
// tests fail.
//
// The JS backend cannot meet the bound: it computes each step on the calling thread (after a
// macrotask turn, so timers and I/O run between steps), and one step of this model takes 250-310
// ms in JS, more than 10x the bound. Its async results are checked in test/generate-async.test.ts.
import { beforeAll, describe, expect, it } from 'vitest';
import { api, nativeAvailable } from './helpers/backends';

const CONFIG = { vocab_size: 8192, n_positions: 512, n_embd: 768, n_layer: 12, n_head: 12 };
const PROMPT = [464, 3290, 318, 257, 1049, 290, 314, 1842];
/** The shortest generation measured. */
const MIN_MS = 1500;
const BOUND_MS = 20;

const ids = (a: ArrayLike<number>) => Array.from(a);

/** Largest gap between ticks of a setTimeout(0) loop on the main thread while `work` runs. */
async function largestGap<T>(work: () => Promise<T>): Promise<{ result: T; gap: number; ticks: number; ms: number }> {
  let last = performance.now(), gap = 0, ticks = 0, running = true;
  const tick = () => {
    const now = performance.now();
    gap = Math.max(gap, now - last);
    last = now;
    ticks++;
    if (running) setTimeout(tick, 0);
  };
  setTimeout(tick, 0);
  const t0 = performance.now();
  const result = await work();
  const ms = performance.now() - t0;
  running = false;
  gap = Math.max(gap, performance.now() - last);
  return { result, gap, ticks, ms };
}

describe.skipIf(!nativeAvailable)('generateAsync and stream on the native backend', () => {
  let model: api.GPT;
  let opts: { maxNewTokens: number; eosTokenId: null };
  let expected: number[];
  let syncMs = 0;

  beforeAll(() => {
    api.useBackend('native');
    model = api.GPT.random(CONFIG, 1, { std: 0.5 });
    model.generate(PROMPT, { maxNewTokens: 4, eosTokenId: null });
    let t0 = performance.now();
    model.generate(PROMPT, { maxNewTokens: 20, eosTokenId: null });
    const stepMs = (performance.now() - t0) / 20;
    // Enough new tokens for MIN_MS at the speed measured here (every position, at most).
    opts = { maxNewTokens: Math.min(CONFIG.n_positions - PROMPT.length, Math.ceil((1.3 * MIN_MS) / stepMs)), eosTokenId: null };
    t0 = performance.now();
    expected = ids(model.generate(PROMPT, opts));
    syncMs = performance.now() - t0;
  }, 120_000);

  const check = (what: string, m: { gap: number; ticks: number; ms: number }) => {
    const label = `${what}: ${opts.maxNewTokens} tokens in ${m.ms.toFixed(0)} ms (sync ${syncMs.toFixed(0)} ms), ${m.ticks} ticks, largest gap ${m.gap.toFixed(1)} ms`;
    console.log(label);
    expect(m.gap, label).toBeLessThan(BOUND_MS);
  };

  it(`generateAsync: no gap of ${BOUND_MS} ms in the event loop, and generate's tokens`, async () => {
    api.useBackend('native');
    const m = await largestGap(() => model.generateAsync(PROMPT, opts));
    expect(ids(m.result)).toEqual(expected);
    check('generateAsync', m);
  });

  it(`stream: no gap of ${BOUND_MS} ms in the event loop, and generate's tokens`, async () => {
    api.useBackend('native');
    const m = await largestGap(async () => {
      const out: number[] = [];
      for await (const t of model.stream(PROMPT, opts)) out.push(t);
      return out;
    });
    expect(m.result).toEqual(expected);
    check('stream', m);
  });
});
