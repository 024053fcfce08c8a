// Encoders for the parameter structs of the native binding. The addon lists each struct's field
// names in index order (binding.wire, from native/binding/wire.h); an encoder fills a Float64Array
// by field name, so the two sides share one definition and a field added on one side only fails
// at load time (missing name) instead of shifting every index silently.
import type { AttentionPlan, MaskView, ViewStrides } from '../validate-attention';
import type { MhaPlan } from '../validate-layers';
import type { DecoderSpec } from '../models/decoder-spec';
import type { WireLayout } from './binding';

type Fields<K extends string> = Readonly<Record<K, number>>;

function indexOf<K extends string>(layout: readonly string[], names: readonly K[], struct: string): Fields<K> {
  const index = {} as Record<K, number>;
  for (const name of names) {
    const i = layout.indexOf(name);
    if (i < 0) throw new Error(`The native addon's ${struct} parameters have no field ${name}: it was built from other sources than this library`);
    index[name] = i;
  }
  if (layout.length !== names.length) {
    throw new Error(`The native addon's ${struct} parameters have ${layout.length} fields, this library encodes ${names.length}: rebuild the addon`);
  }
  return Object.freeze(index);
}

const ATTENTION = ['B', 'Hq', 'Hkv', 'Sq', 'Skv', 'D', 'Dv', 'qSb', 'qSh', 'qSt', 'kSb', 'kSh', 'kSt', 'vSb', 'vSh', 'vSt',
  'ySb', 'ySh', 'ySt', 'maskSb', 'maskSh', 'maskSq', 'maskLen', 'scale', 'softcap', 'causal', 'qkMode'] as const;
const MHA = ['dIn', 'dOut', 'numHeads', 'numKVHeads', 'headDim', 'causal', 'scale', 'rotaryDim'] as const;
const MASK = ['maskSb', 'maskSh', 'maskSq', 'maskLen'] as const;
const PRESENT = ['B', 'H', 'P', 'S', 'd', 'xSb', 'xSh', 'xSt'] as const;
const DECODER = ['vocab', 'width', 'layers', 'numHeads', 'numKVHeads', 'headDim', 'ffn', 'maxPositions', 'norm', 'eps', 'mlp',
  'rotaryDim', 'window', 'scale', 'dtype', 'tied'] as const;
/** attn::DType (native/include/attn/half.h): a weight's or a cache's element type. */
export const DTYPE_CODES = { F32: 0, F16: 1, BF16: 2 } as const;

export type AttentionField = (typeof ATTENTION)[number];

export interface Wire {
  /** Field name -> index of the attention struct (tests use it to corrupt one field by name). */
  readonly attentionFields: Fields<AttentionField>;
  attention(plan: AttentionPlan): Float64Array;
  mha(plan: MhaPlan): Float64Array;
  mask(mask: MaskView | null): Float64Array | null;
  present(plan: AttentionPlan, xView: ViewStrides, d: number): Float64Array;
  decoder(spec: DecoderSpec): Float64Array;
  /** [batchDims, aBatchStrides, bBatchStrides] of a batched matmul, or undefined for one product. */
  matmulBatch(plan: { batchDims: readonly number[]; aBatchStrides: readonly number[]; bBatchStrides: readonly number[] }): Float64Array | undefined;
}

export function createWire(layout: WireLayout): Wire {
  const A = indexOf(layout.attention, ATTENTION, 'attention');
  const L = indexOf(layout.mha, MHA, 'MultiHeadAttention');
  const M = indexOf(layout.mask, MASK, 'mask');
  const P = indexOf(layout.present, PRESENT, 'concatPresent');
  const Dc = indexOf(layout.decoder ?? [], DECODER, 'Decoder');
  return {
    attentionFields: A,
    attention(plan) {
      const p = new Float64Array(ATTENTION.length);
      const { q, k, v, y, mask } = plan;
      p[A.B] = plan.B; p[A.Hq] = plan.Hq; p[A.Hkv] = plan.Hkv; p[A.Sq] = plan.Sq; p[A.Skv] = plan.total;
      p[A.D] = plan.D; p[A.Dv] = plan.Dv;
      p[A.qSb] = q.sb; p[A.qSh] = q.sh; p[A.qSt] = q.st;
      p[A.kSb] = k.sb; p[A.kSh] = k.sh; p[A.kSt] = k.st;
      p[A.vSb] = v.sb; p[A.vSh] = v.sh; p[A.vSt] = v.st;
      p[A.ySb] = y.sb; p[A.ySh] = y.sh; p[A.ySt] = y.st;
      if (mask) {
        p[A.maskSb] = mask.sb; p[A.maskSh] = mask.sh; p[A.maskSq] = mask.sq; p[A.maskLen] = mask.len;
      }
      p[A.scale] = plan.scale; p[A.softcap] = plan.softcap; p[A.causal] = plan.causal ? 1 : 0; p[A.qkMode] = plan.qkMode;
      return p;
    },
    mha(plan) {
      const p = new Float64Array(MHA.length);
      p[L.dIn] = plan.dIn; p[L.dOut] = plan.dOut; p[L.numHeads] = plan.numHeads; p[L.numKVHeads] = plan.numKVHeads;
      p[L.headDim] = plan.headDim; p[L.causal] = plan.causal ? 1 : 0; p[L.scale] = plan.scale;
      p[L.rotaryDim] = plan.rope ? plan.rope.rotaryDim : 0;
      return p;
    },
    mask(mask) {
      if (!mask) return null;
      const p = new Float64Array(MASK.length);
      p[M.maskSb] = mask.sb; p[M.maskSh] = mask.sh; p[M.maskSq] = mask.sq; p[M.maskLen] = mask.len;
      return p;
    },
    present(plan, xView, d) {
      const p = new Float64Array(PRESENT.length);
      p[P.B] = plan.B; p[P.H] = plan.Hkv; p[P.P] = plan.past; p[P.S] = plan.Skv; p[P.d] = d;
      p[P.xSb] = xView.sb; p[P.xSh] = xView.sh; p[P.xSt] = xView.st;
      return p;
    },
    decoder(spec) {
      const p = new Float64Array(DECODER.length);
      p[Dc.vocab] = spec.vocab; p[Dc.width] = spec.width; p[Dc.layers] = spec.layers.length; p[Dc.numHeads] = spec.numHeads;
      p[Dc.numKVHeads] = spec.numKVHeads; p[Dc.headDim] = spec.headDim; p[Dc.ffn] = spec.ffn;
      p[Dc.maxPositions] = spec.positions ? spec.positions.rows : 0;
      p[Dc.norm] = spec.norm === 'rms' ? 1 : 0; p[Dc.eps] = spec.eps; p[Dc.mlp] = spec.mlp === 'swiglu' ? 1 : 0;
      p[Dc.rotaryDim] = spec.rope ? spec.rope.rotaryDim : 0; p[Dc.window] = spec.window; p[Dc.scale] = spec.scale;
      p[Dc.dtype] = DTYPE_CODES[spec.dtype]; p[Dc.tied] = spec.head ? 0 : 1;
      return p;
    },
    matmulBatch(plan) {
      if (plan.batchDims.length === 0) return undefined;
      return Float64Array.from([...plan.batchDims, ...plan.aBatchStrides, ...plan.bBatchStrides]);
    },
  };
}
