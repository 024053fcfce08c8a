// onnxruntime-node as a side-by-side peer (`npm run bench -- --peers`).
//
// Each builder returns one or more candidate specs {label, model, feeds, output, toOurs}: an ONNX
// model built in memory (bench/peers/onnx-proto.mjs), its inputs as ort Tensors (created once), the
// output to compare, and how to turn that output into our layout. When a workload has several ways
// to run on onnxruntime, the bench times each briefly and keeps the fastest, so the peer is
// onnxruntime at its best, not at its most convenient.
import * as P from './onnx-proto.mjs';

const F32 = P.DataType.FLOAT;
const I32 = P.DataType.INT32;
const OPSETS = [{ domain: '', version: 23 }, { domain: 'com.microsoft', version: 1 }];

/**
 * Loads onnxruntime-node, or says why it cannot.
 * @returns {Promise<{ort: object, version: string} | {error: string}>}
 */
export async function loadOnnxRuntime() {
  try {
    const ort = (await import('onnxruntime-node')).default;
    return { ort, version: ort.env.versions?.node ?? ort.env.versions?.common ?? 'unknown' };
  } catch (err) {
    return {
      error: `onnxruntime-node is not installed (${err.message.split('\n')[0]}); ` +
        'it is a devDependency: run `npm install` in the repository (the .npmrc skips its CUDA download)',
    };
  }
}

function sliceRows(data, groups, rows, from, to, width) {
  const out = new Float32Array(groups * (to - from) * width);
  for (let g = 0; g < groups; g++) {
    out.set(data.subarray((g * rows + from) * width, (g * rows + to) * width), g * (to - from) * width);
  }
  return out;
}

/**
 * The peer: model builders plus session creation with our thread count.
 * @param {object} ort the onnxruntime-node module
 * @param {{threads: number}} opts intra-op threads (set to the thread count of our native kernels)
 */
export function createPeer(ort, { threads }) {
  const t = (data, dims) => new ort.Tensor(data instanceof Int32Array ? 'int32' : 'float32', data, dims);
  const build = (nodes, inputs, outputs, initializers = []) =>
    P.model(P.graph({ name: 'bench', nodes, inputs, outputs, initializers }), OPSETS);

  return {
    threads,

    /** Creates a session for a spec: { run(): Promise, output(): Promise<Float32Array> in our layout }. */
    async session(spec) {
      const session = await ort.InferenceSession.create(spec.model, {
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
      });
      const fetches = [spec.output];
      return {
        label: spec.label,
        run: () => session.run(spec.feeds, fetches),
        output: async () => {
          const data = (await session.run(spec.feeds, fetches))[spec.output].data;
          return spec.toOurs ? spec.toOurs(data) : data;
        },
        release: () => session.release(),
      };
    },

    // Both operands are graph inputs: a general matmul, nothing pre-packed ahead of the timing.
    matmul({ m, k, n, a, b }) {
      return [{
        label: 'MatMul',
        model: build([P.node({ op: 'MatMul', inputs: ['a', 'b'], outputs: ['c'] })],
          [P.valueInfo('a', F32, [m, k]), P.valueInfo('b', F32, [k, n])], [P.valueInfo('c', F32, [m, n])]),
        feeds: { a: t(a, [m, k]), b: t(b, [k, n]) },
        output: 'c',
      }];
    },

    // A layer's weights are constants, so onnxruntime gets them as initializers (it may pre-pack
    // them once at session creation): how an ort user deploys a linear layer.
    gemm({ m, k, n, a, b, bias, weightsAsInitializers }) {
      const gemmNode = P.node({ op: 'Gemm', inputs: ['a', 'b', 'bias'], outputs: ['c'] });
      const inputs = [P.valueInfo('a', F32, [m, k])];
      const feeds = { a: t(a, [m, k]) };
      const initializers = [];
      if (weightsAsInitializers) {
        initializers.push(P.tensor('b', [k, n], b), P.tensor('bias', [n], bias));
      } else {
        inputs.push(P.valueInfo('b', F32, [k, n]), P.valueInfo('bias', F32, [n]));
        Object.assign(feeds, { b: t(b, [k, n]), bias: t(bias, [n]) });
      }
      return [{
        label: weightsAsInitializers ? 'Gemm (W, b initializers)' : 'Gemm',
        model: build([gemmNode], inputs, [P.valueInfo('c', F32, [m, n])], initializers),
        feeds, output: 'c',
      }];
    },

    // com.microsoft GroupQueryAttention (causal by definition) for a prompt with no past:
    // seqlens_k = S - 1 per sequence, total_sequence_length = S.
    groupQueryAttention({ B, Hq, Hkv, S, D, q, k, v, outputToOurs }) {
      const node = P.node({
        op: 'GroupQueryAttention', domain: 'com.microsoft',
        inputs: ['q', 'k', 'v', '', '', 'seqlens_k', 'total_len'], outputs: ['y', 'present_k', 'present_v'],
        attrs: { num_heads: P.attr.int(Hq), kv_num_heads: P.attr.int(Hkv) },
      });
      const model = build([node],
        [P.valueInfo('q', F32, [B, S, Hq * D]), P.valueInfo('k', F32, [B, S, Hkv * D]),
          P.valueInfo('v', F32, [B, S, Hkv * D]), P.valueInfo('seqlens_k', I32, [B]), P.valueInfo('total_len', I32, [])],
        [P.valueInfo('y', F32, [B, S, Hq * D]), P.valueInfo('present_k', F32, [B, Hkv, S, D]),
          P.valueInfo('present_v', F32, [B, Hkv, S, D])]);
      return [{
        label: 'GroupQueryAttention',
        model,
        feeds: {
          q: t(q, [B, S, Hq * D]), k: t(k, [B, S, Hkv * D]), v: t(v, [B, S, Hkv * D]),
          seqlens_k: t(new Int32Array(B).fill(S - 1), [B]), total_len: t(Int32Array.of(S), []),
        },
        output: 'y', toOurs: outputToOurs,
      }];
    },

    // Decode with ONNX Attention-23, two ways: the usual past_key/past_value step (it also writes
    // present = past + new, a copy of the cache) and the in-place form ours uses (k/v = the whole
    // cache including the new row, no past).
    decodeAttention({ B, Hq, Hkv, past, D, q, k, v }) {
      const T = past + 1;
      const qInfo = P.valueInfo('q', F32, [B, Hq, 1, D]);
      const yInfo = P.valueInfo('y', F32, [B, Hq, 1, D]);
      const withPast = build(
        [P.node({ op: 'Attention', inputs: ['q', 'k', 'v', '', 'past_k', 'past_v'], outputs: ['y', 'present_k', 'present_v'] })],
        [qInfo, P.valueInfo('k', F32, [B, Hkv, 1, D]), P.valueInfo('v', F32, [B, Hkv, 1, D]),
          P.valueInfo('past_k', F32, [B, Hkv, past, D]), P.valueInfo('past_v', F32, [B, Hkv, past, D])],
        [yInfo, P.valueInfo('present_k', F32, [B, Hkv, T, D]), P.valueInfo('present_v', F32, [B, Hkv, T, D])]);
      const inPlace = build(
        [P.node({ op: 'Attention', inputs: ['q', 'k', 'v'], outputs: ['y'] })],
        [qInfo, P.valueInfo('k', F32, [B, Hkv, T, D]), P.valueInfo('v', F32, [B, Hkv, T, D])],
        [yInfo]);
      const G = B * Hkv;
      return [
        {
          label: 'Attention-23 (past_key/past_value)',
          model: withPast,
          feeds: {
            q: t(q, [B, Hq, 1, D]),
            k: t(sliceRows(k, G, T, past, T, D), [B, Hkv, 1, D]), v: t(sliceRows(v, G, T, past, T, D), [B, Hkv, 1, D]),
            past_k: t(sliceRows(k, G, T, 0, past, D), [B, Hkv, past, D]),
            past_v: t(sliceRows(v, G, T, 0, past, D), [B, Hkv, past, D]),
          },
          output: 'y',
        },
        {
          label: 'Attention-23 (whole cache as k/v)',
          model: inPlace,
          feeds: { q: t(q, [B, Hq, 1, D]), k: t(k, [B, Hkv, T, D]), v: t(v, [B, Hkv, T, D]) },
          output: 'y',
        },
      ];
    },

    // x [B, S, dIn] -> q/k/v projections (weights as initializers) -> causal Attention-23 on the
    // 3-D layout with one head; also a fused form (one [dIn, 3D] MatMul + Split).
    seedDemo({ B, S, dIn, D, x, wq, wk, wv }) {
      const attn = P.node({
        op: 'Attention', inputs: ['q', 'k', 'v'], outputs: ['y'],
        attrs: { is_causal: P.attr.int(1), q_num_heads: P.attr.int(1), kv_num_heads: P.attr.int(1) },
      });
      const xInfo = [P.valueInfo('x', F32, [B, S, dIn])];
      const yInfo = [P.valueInfo('y', F32, [B, S, D])];
      const feeds = { x: t(x, [B, S, dIn]) };
      const separate = build(
        [P.node({ op: 'MatMul', inputs: ['x', 'wq'], outputs: ['q'] }), P.node({ op: 'MatMul', inputs: ['x', 'wk'], outputs: ['k'] }),
          P.node({ op: 'MatMul', inputs: ['x', 'wv'], outputs: ['v'] }), attn],
        xInfo, yInfo, [P.tensor('wq', [dIn, D], wq), P.tensor('wk', [dIn, D], wk), P.tensor('wv', [dIn, D], wv)]);
      const wqkv = new Float32Array(dIn * 3 * D);
      for (let i = 0; i < dIn; i++) {
        wqkv.set(wq.subarray(i * D, (i + 1) * D), i * 3 * D);
        wqkv.set(wk.subarray(i * D, (i + 1) * D), i * 3 * D + D);
        wqkv.set(wv.subarray(i * D, (i + 1) * D), i * 3 * D + 2 * D);
      }
      const fused = build(
        [P.node({ op: 'MatMul', inputs: ['x', 'wqkv'], outputs: ['qkv'] }),
          P.node({ op: 'Split', inputs: ['qkv', 'split'], outputs: ['q', 'k', 'v'], attrs: { axis: P.attr.int(-1) } }), attn],
        xInfo, yInfo, [P.tensor('wqkv', [dIn, 3 * D], wqkv), P.tensor('split', [3], BigInt64Array.of(BigInt(D), BigInt(D), BigInt(D)))]);
      return [
        { label: '3x MatMul + Attention-23', model: separate, feeds, output: 'y' },
        { label: 'MatMul [512,192] + Split + Attention-23', model: fused, feeds, output: 'y' },
      ];
    },
  };
}
