// The shared building blocks of decoder-only transformers. An architecture is a composition of
// these (lib/gpt/model.ts builds GPT-2 from them, lib/llama/model.ts the Llama family); a new one adds the blocks it lacks here (a
// norm, an MLP, a position scheme) and composes, instead of copying a model. Every block runs on
// the backend it was built with. Activations are (rows, width) row-major Float32Arrays, rows = B*S.
import type { Backend } from '../backend';
import type { KVCache } from '../kv-cache';
import { MultiHeadAttention } from '../mha';
import type { AttentionMask } from '../types';
import { planMatmul } from '../validate';

/** A per-row normalisation: out = norm(x) row by row. */
export interface Norm {
  forward(x: Float32Array, rows: number, out: Float32Array): void;
}

/** A position-wise feed-forward network: (rows, width) -> (rows, width), a new array. */
export interface Mlp {
  forward(h: Float32Array, rows: number): Float32Array;
}

/** y = x W + b with W of dims [inF, outF] (GPT-2's Conv1D layout). */
export class Linear {
  constructor(
    private readonly ops: Backend,
    readonly weight: Float32Array,
    readonly bias: Float32Array | null,
    readonly inF: number,
    readonly outF: number,
  ) {}

  forward(x: Float32Array, rows: number): Float32Array {
    const out = new Float32Array(rows * this.outF);
    this.ops.matmul(planMatmul([rows, this.inF], [this.inF, this.outF], false, false), x, this.weight, this.bias, out);
    return out;
  }
}

/** torch.nn.LayerNorm over the last dim, with gain and shift. */
export class LayerNorm implements Norm {
  constructor(
    private readonly ops: Backend,
    readonly gamma: Float32Array,
    readonly beta: Float32Array,
    readonly eps: number,
  ) {}

  forward(x: Float32Array, rows: number, out: Float32Array): void {
    this.ops.layerNorm(x, rows, this.gamma.length, this.gamma, this.beta, this.eps, out);
  }
}

/** Hugging Face's LlamaRMSNorm over the last dim: x / sqrt(mean(x^2) + eps) * weight. */
export class RmsNorm implements Norm {
  constructor(
    private readonly ops: Backend,
    readonly weight: Float32Array,
    readonly eps: number,
  ) {}

  forward(x: Float32Array, rows: number, out: Float32Array): void {
    this.ops.rmsNorm(x, rows, this.weight.length, this.weight, this.eps, out);
  }
}

/** down(silu(gate(h)) * up(h)): the Llama family's MLP. */
export class SwigluMlp implements Mlp {
  constructor(
    private readonly ops: Backend,
    readonly gate: Linear,
    readonly up: Linear,
    readonly down: Linear,
  ) {}

  forward(h: Float32Array, rows: number): Float32Array {
    const g = this.gate.forward(h, rows), u = this.up.forward(h, rows);
    const a = new Float32Array(g.length);
    this.ops.swiglu(g, u, a);
    return this.down.forward(a, rows);
  }
}

/** fc -> GELU (tanh approximation) -> proj: GPT-2's MLP. */
export class GeluMlp implements Mlp {
  constructor(
    private readonly ops: Backend,
    readonly fc: Linear,
    readonly proj: Linear,
  ) {}

  forward(h: Float32Array, rows: number): Float32Array {
    const f = this.fc.forward(h, rows);
    this.ops.geluTanh(f);
    return this.proj.forward(f, rows);
  }
}

/**
 * Token embeddings plus, for models with learned positions, position embeddings (null for models
 * whose attention layers carry the positions, as rotary ones do).
 */
export class Embedding {
  constructor(
    private readonly ops: Backend,
    readonly tokens: Float32Array,
    readonly positions: Float32Array | null,
    readonly width: number,
  ) {}

  /**
   * Rows for B sequences of S tokens whose first token sits at position `start`, or with `offsets`
   * (a left-padded batch, see Padding) at `start - offsets[b]` for row b, clamped at 0.
   */
  forward(tokens: ArrayLike<number>, B: number, S: number, start: number, offsets: Int32Array | null = null): Float32Array {
    const positions = new Int32Array(B * S);
    for (let r = 0; r < B * S; r++) positions[r] = Math.max(0, start + (r % S) - (offsets ? offsets[Math.floor(r / S)] : 0));
    const x = new Float32Array(B * S * this.width);
    this.ops.embed(this.tokens, this.positions, this.width, tokens, positions, x);
    return x;
  }
}

/**
 * A left-padded batch: row b's first offsets[b] cache positions are padding. attnMask hides them
 * from every query; offsets make each row count positions from its first real token (the learned
 * position embeddings' Embedding.forward, the rotary layers' positionOffsets).
 */
export interface Padding {
  readonly attnMask: AttentionMask;
  readonly offsets: Int32Array;
}

/**
 * A pre-norm decoder block: x += attn(norm1(x)); x += mlp(norm2(x)). The attention layer carries
 * the model's head layout and position scheme; with a cache it appends this call's keys/values.
 */
export class PreNormBlock {
  constructor(
    private readonly ops: Backend,
    readonly norm1: Norm,
    readonly attn: MultiHeadAttention,
    readonly norm2: Norm,
    readonly mlp: Mlp,
  ) {}

  /** Runs on x (B*S rows of width) in place. */
  forward(x: Float32Array, B: number, S: number, width: number, cache: KVCache | null, padding: Padding | null = null): void {
    const rows = B * S;
    const h = new Float32Array(rows * width);
    this.norm1.forward(x, rows, h);
    const a = this.attn.forward({ data: h, dims: [B, S, width] },
      { cache: cache ?? undefined, attnMask: padding?.attnMask, positionOffsets: padding?.offsets });
    this.ops.addInPlace(x, a.data);
    this.norm2.forward(x, rows, h);
    this.ops.addInPlace(x, this.mlp.forward(h, rows));
  }
}

/**
 * The final norm and the LM head: logits = norm(x) @ head, head of dims [width, vocab] (a
 * transposed copy of the token embedding when the model ties them, else its own lm_head).
 */
export class LmHead {
  constructor(
    readonly norm: Norm,
    readonly head: Linear,
  ) {}

  /** Logits of `rows` rows of x starting at row `from`: (rows, vocab). */
  forward(x: Float32Array, from: number, rows: number): Float32Array {
    const width = this.head.inF;
    const h = new Float32Array(rows * width);
    this.norm.forward(x.subarray(from * width, (from + rows) * width), rows, h);
    return this.head.forward(h, rows);
  }
}
