// A GGUF v3 writer for the bench's llama.cpp peer (bench/peers/llama-cpp.mjs): the same random
// weights the library's models are built from, written as llama.cpp's `gpt2` or `llama`
// architecture, F32 or F16. It is not a converter for real checkpoints: the tokenizer is a
// stand-in (see standInVocab) and only the keys those two architectures read are written.
//
// The format (ggml docs/gguf.md): "GGUF", version 3, tensor count and key/value count (u64), the
// key/value pairs (string key, u32 value type, value), one info per tensor (name, n_dims, dims in
// ggml's ne order, ggml type, offset into the data section), padding to the alignment (32), then
// each tensor's data, each starting at a multiple of the alignment. Everything little-endian.
//
// ggml's ne[0] is the fastest-varying dimension, so a row-major [rows, cols] array is ne = [cols,
// rows], and a weight that ggml_mul_mat applies as y = W x is stored [out, in] (ne = [in, out]),
// like a Hugging Face nn.Linear. GPT-2's Conv1D weights are [in, out] and are transposed here, as
// llama.cpp's convert_hf_to_gguf.py does. Llama's q/k projections are permuted (LlamaModel.permute
// there): Hugging Face rotates the two halves of each head (rotate_half), llama.cpp's `llama` arch
// rotates adjacent pairs (LLAMA_ROPE_TYPE_NORM), so row i + half of a head moves next to row i.
import * as fs from 'node:fs';

const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const ALIGNMENT = 32;

/** ggml_type values (ggml.h). */
export const GgmlType = Object.freeze({ F32: 0, F16: 1 });
/** llama_ftype values (llama.h), for general.file_type. */
const FILE_TYPE = { F32: 0, F16: 1 };

/** gguf_type values of metadata. */
const T = { U8: 0, I8: 1, U16: 2, I16: 3, U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9, U64: 10, I64: 11, F64: 12 };

/** Metadata value helpers: GGUF values are typed, so a whole number that is a float stays a float. */
export const gguf = {
  u32: (value) => ({ type: T.U32, value }),
  i32: (value) => ({ type: T.I32, value }),
  f32: (value) => ({ type: T.F32, value }),
  bool: (value) => ({ type: T.BOOL, value }),
  string: (value) => ({ type: T.STRING, value }),
  strings: (value) => ({ type: T.ARRAY, of: T.STRING, value }),
  i32s: (value) => ({ type: T.ARRAY, of: T.I32, value }),
};

class ByteWriter {
  constructor() {
    this.chunks = [];
    this.size = 0;
  }

  push(bytes) {
    this.chunks.push(bytes);
    this.size += bytes.length;
  }

  scalar(type, value) {
    const b = Buffer.alloc(type === T.U64 || type === T.I64 || type === T.F64 ? 8 : type === T.U16 || type === T.I16 ? 2 : type <= T.I8 || type === T.BOOL ? 1 : 4);
    switch (type) {
      case T.U8: b.writeUInt8(value); break;
      case T.I8: b.writeInt8(value); break;
      case T.U16: b.writeUInt16LE(value); break;
      case T.I16: b.writeInt16LE(value); break;
      case T.U32: b.writeUInt32LE(value); break;
      case T.I32: b.writeInt32LE(value); break;
      case T.F32: b.writeFloatLE(value); break;
      case T.BOOL: b.writeUInt8(value ? 1 : 0); break;
      case T.U64: b.writeBigUInt64LE(BigInt(value)); break;
      case T.I64: b.writeBigInt64LE(BigInt(value)); break;
      case T.F64: b.writeDoubleLE(value); break;
      default: throw new TypeError(`gguf: scalar type ${type}`);
    }
    this.push(b);
  }

  string(s) {
    const bytes = Buffer.from(s, 'utf8');
    this.scalar(T.U64, bytes.length);
    this.push(bytes);
  }

  value({ type, of, value }) {
    if (type === T.STRING) return this.string(value);
    if (type !== T.ARRAY) return this.scalar(type, value);
    this.scalar(T.U32, of);
    this.scalar(T.U64, value.length);
    if (of === T.STRING) for (const s of value) this.string(s);
    else if (of === T.I32) this.push(Buffer.from(Int32Array.from(value).buffer));
    else for (const v of value) this.scalar(of, v);
  }
}

const aligned = (n) => Math.ceil(n / ALIGNMENT) * ALIGNMENT;

/** float32 -> IEEE half bits, rounded to nearest even (as numpy's astype(float16) and the library's F16 rounding). */
export function toHalfBits(src) {
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const x = u[i], sign = (x >>> 16) & 0x8000, exp = (x >>> 23) & 0xff, mant = x & 0x7fffff;
    let h;
    if (exp === 0xff) h = sign | 0x7c00 | (mant ? 0x200 : 0); // inf, NaN
    else if (exp > 142) h = sign | 0x7c00; // >= 65520 after rounding: overflow to inf
    else if (exp >= 113) { // normal half: 13 bits go, rounded to nearest even (a carry may bump the exponent)
      const v = ((exp - 112) << 10) | (mant >>> 13), rest = mant & 0x1fff;
      h = sign | (v + (rest > 0x1000 || (rest === 0x1000 && (v & 1)) ? 1 : 0));
    } else if (exp >= 102) { // subnormal half
      const m = mant | 0x800000, shift = 126 - exp, v = m >>> shift, rest = m & ((1 << shift) - 1), halfway = 1 << (shift - 1);
      h = sign | (v + (rest > halfway || (rest === halfway && (v & 1)) ? 1 : 0));
    } else h = sign; // underflows to zero
    out[i] = h;
  }
  return out;
}

/**
 * Writes a GGUF v3 file, one tensor in memory at a time.
 * @param {string} file output path
 * @param {Record<string, {type: number, value: unknown}>} metadata key -> a `gguf.*` value
 * @param {{name: string, ne: number[], type: number, data: () => Float32Array}[]} tensors ne in
 *   ggml order (fastest first); `data` returns the values row-major in that order (called once,
 *   while writing; its array is converted to the tensor's type and dropped)
 * @returns {number} the file size in bytes
 */
export function writeGguf(file, metadata, tensors) {
  const head = new ByteWriter();
  head.scalar(T.U32, GGUF_MAGIC);
  head.scalar(T.U32, 3);
  head.scalar(T.U64, tensors.length);
  head.scalar(T.U64, Object.keys(metadata).length);
  for (const [key, value] of Object.entries(metadata)) {
    head.string(key);
    head.scalar(T.U32, value.type);
    head.value(value);
  }
  let offset = 0;
  const offsets = [];
  for (const t of tensors) {
    head.string(t.name);
    head.scalar(T.U32, t.ne.length);
    for (const d of t.ne) head.scalar(T.U64, d);
    head.scalar(T.U32, t.type);
    head.scalar(T.U64, offset);
    offsets.push(offset);
    const count = t.ne.reduce((a, b) => a * b, 1);
    offset = aligned(offset + count * (t.type === GgmlType.F16 ? 2 : 4));
  }
  const fd = fs.openSync(file, 'w');
  try {
    for (const c of head.chunks) fs.writeSync(fd, c);
    const dataStart = aligned(head.size);
    fs.writeSync(fd, Buffer.alloc(dataStart - head.size));
    let at = 0;
    tensors.forEach((t, i) => {
      if (offsets[i] > at) fs.writeSync(fd, Buffer.alloc(offsets[i] - at));
      const values = t.data();
      const count = t.ne.reduce((a, b) => a * b, 1);
      if (values.length !== count) throw new RangeError(`gguf: ${t.name} has ${values.length} values for ne [${t.ne}]`);
      const typed = t.type === GgmlType.F16 ? toHalfBits(values) : values;
      fs.writeSync(fd, new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength));
      at = offsets[i] + typed.byteLength;
    });
    if (offset > at) fs.writeSync(fd, Buffer.alloc(offset - at));
    return dataStart + offset;
  } finally {
    fs.closeSync(fd);
  }
}

/** [rows, cols] row-major -> [cols, rows] row-major. */
function transpose(data, rows, cols) {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

/**
 * convert_hf_to_gguf.py's LlamaModel.permute for q/k rows ([heads * D, ...], `width` values per
 * row; a bias has width 1): within each head, rows [0, D/2) and [D/2, D) interleave, row i going to
 * 2i and row D/2 + i to 2i + 1.
 */
export function permuteRope(data, heads, width) {
  const rows = data.length / width, D = rows / heads, half = D / 2;
  const out = new Float32Array(data.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      out.set(data.subarray((h * D + i) * width, (h * D + i + 1) * width), (h * D + 2 * i) * width);
      out.set(data.subarray((h * D + half + i) * width, (h * D + half + i + 1) * width), (h * D + 2 * i + 1) * width);
    }
  }
  return out;
}

// GPT-2's byte-level alphabet (bytes_to_unicode in GPT-2's encoder.py): printable bytes map to
// themselves, the rest to U+0100 upwards, so every byte is one visible character.
function byteTokens() {
  const printable = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const chars = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) chars[b] = String.fromCodePoint(printable.includes(b) ? b : next++);
  return chars;
}

/**
 * A stand-in `gpt2` (byte-level BPE) vocabulary of `vocab` tokens: the 256 bytes, a few merged
 * pairs (llama.cpp's BPE loader wants merges), filler tokens, and <|endoftext|> last as BOS/EOS
 * (GPT-2's 50256 when vocab is 50257). The bench feeds token ids, never text, so only its size
 * matters. (tokenizer.ggml.model "none" would need no list, but node-llama-cpp 3.21.1 aborts
 * loading such a model: "Tokenizer not initialized".)
 */
export function standInVocab(vocab) {
  if (vocab < 300) throw new RangeError(`gguf: the stand-in vocabulary needs vocab >= 300, got ${vocab}`);
  const bytes = byteTokens();
  const pairs = [['Ġ', 't'], ['Ġ', 'a'], ['h', 'e'], ['i', 'n'], ['r', 'e'], ['o', 'n'], ['Ġt', 'he'], ['e', 'r']];
  const tokens = [...bytes, ...pairs.map(([a, b]) => a + b)];
  const types = tokens.map(() => 1); // NORMAL
  while (tokens.length < vocab - 1) {
    tokens.push(`<|filler_${tokens.length}|>`);
    types.push(1);
  }
  tokens.push('<|endoftext|>');
  types.push(3); // CONTROL
  return {
    'tokenizer.ggml.model': gguf.string('gpt2'),
    'tokenizer.ggml.pre': gguf.string('gpt-2'),
    'tokenizer.ggml.tokens': gguf.strings(tokens),
    'tokenizer.ggml.token_type': gguf.i32s(types),
    'tokenizer.ggml.merges': gguf.strings(pairs.map(([a, b]) => `${a} ${b}`)),
    'tokenizer.ggml.bos_token_id': gguf.u32(vocab - 1),
    'tokenizer.ggml.eos_token_id': gguf.u32(vocab - 1),
    'tokenizer.ggml.add_bos_token': gguf.bool(false),
  };
}

const dtypeOf = (dtype) => {
  if (dtype !== 'F32' && dtype !== 'F16') throw new RangeError(`gguf: dtype 'F32' or 'F16', got ${JSON.stringify(dtype)}`);
  return dtype;
};

/**
 * A GPT-2 model (GPT.namedWeights(): GPT-2 names, Conv1D [in, out] layout) as llama.cpp's `gpt2`
 * architecture. `dtype` is the type of the 2-D tensors (embeddings and matrices); norms and biases
 * stay F32, as convert_hf_to_gguf.py writes them.
 * @param {string} file output path
 * @param {{vocab_size: number, n_positions: number, n_embd: number, n_layer: number, n_head: number, layer_norm_epsilon?: number}} config
 * @param {Map<string, {data: Float32Array, dims: number[]}>} weights
 * @param {'F32' | 'F16'} dtype
 */
export function writeGpt2Gguf(file, config, weights, dtype = 'F32') {
  const { vocab_size: V, n_positions: P, n_embd: E, n_layer: L, n_head: H } = config;
  const matType = GgmlType[dtypeOf(dtype)];
  const get = (name) => {
    const t = weights.get(name);
    if (!t) throw new Error(`gguf: GPT-2 weight ${name} is missing`);
    return t.data;
  };
  const vector = (name, from) => ({ name, ne: [get(from).length], type: GgmlType.F32, data: () => get(from) });
  // Conv1D [in, out] -> [out, in]: ne = [in, out].
  const conv1d = (name, from, inF, out) => ({ name, ne: [inF, out], type: matType, data: () => transpose(get(from), inF, out) });
  const tensors = [
    { name: 'token_embd.weight', ne: [E, V], type: matType, data: () => get('wte.weight') },
    { name: 'position_embd.weight', ne: [E, P], type: matType, data: () => get('wpe.weight') },
  ];
  for (let i = 0; i < L; i++) {
    const h = `h.${i}.`, b = `blk.${i}.`;
    tensors.push(
      vector(`${b}attn_norm.weight`, `${h}ln_1.weight`), vector(`${b}attn_norm.bias`, `${h}ln_1.bias`),
      conv1d(`${b}attn_qkv.weight`, `${h}attn.c_attn.weight`, E, 3 * E), vector(`${b}attn_qkv.bias`, `${h}attn.c_attn.bias`),
      conv1d(`${b}attn_output.weight`, `${h}attn.c_proj.weight`, E, E), vector(`${b}attn_output.bias`, `${h}attn.c_proj.bias`),
      vector(`${b}ffn_norm.weight`, `${h}ln_2.weight`), vector(`${b}ffn_norm.bias`, `${h}ln_2.bias`),
      conv1d(`${b}ffn_up.weight`, `${h}mlp.c_fc.weight`, E, 4 * E), vector(`${b}ffn_up.bias`, `${h}mlp.c_fc.bias`),
      conv1d(`${b}ffn_down.weight`, `${h}mlp.c_proj.weight`, 4 * E, E), vector(`${b}ffn_down.bias`, `${h}mlp.c_proj.bias`),
    );
  }
  tensors.push(vector('output_norm.weight', 'ln_f.weight'), vector('output_norm.bias', 'ln_f.bias'));
  const metadata = {
    'general.architecture': gguf.string('gpt2'),
    'general.name': gguf.string('node-attention bench GPT-2 (random weights)'),
    'general.file_type': gguf.u32(FILE_TYPE[dtype]),
    'gpt2.context_length': gguf.u32(P),
    'gpt2.embedding_length': gguf.u32(E),
    'gpt2.feed_forward_length': gguf.u32(4 * E),
    'gpt2.block_count': gguf.u32(L),
    'gpt2.attention.head_count': gguf.u32(H),
    'gpt2.attention.layer_norm_epsilon': gguf.f32(config.layer_norm_epsilon ?? 1e-5),
    ...standInVocab(V),
  };
  return writeGguf(file, metadata, tensors);
}

/**
 * A Llama model (Llama.namedWeights(): Hugging Face names, nn.Linear [out, in] layout) as
 * llama.cpp's `llama` architecture, q/k permuted for its rope. Plain Llama only: no rope scaling,
 * no sliding window. `config` is the resolved config (Llama.config: head_dim, num_key_value_heads,
 * rope_theta, rms_norm_eps filled in).
 * @param {string} file output path
 * @param {object} config
 * @param {Map<string, {data: Float32Array, dims: number[]}>} weights
 * @param {'F32' | 'F16'} dtype
 */
export function writeLlamaGguf(file, config, weights, dtype = 'F32') {
  const { vocab_size: V, hidden_size: E, intermediate_size: I, num_hidden_layers: L, num_attention_heads: Hq } = config;
  const Hkv = config.num_key_value_heads ?? Hq, D = config.head_dim ?? E / Hq;
  if (config.rope_scaling) throw new Error('gguf: rope_scaling is not written (plain Llama rope only)');
  if (config.model_type && config.model_type !== 'llama') throw new Error(`gguf: model_type ${config.model_type} is not written (llama only)`);
  const matType = GgmlType[dtypeOf(dtype)];
  const has = (name) => weights.has(name);
  const get = (name) => {
    const t = weights.get(name);
    if (!t) throw new Error(`gguf: Llama weight ${name} is missing`);
    return t.data;
  };
  const vector = (name, from, map = (x) => x) => ({ name, ne: [get(from).length], type: GgmlType.F32, data: () => map(get(from)) });
  const linear = (name, from, out, inF, map = (x) => x) => ({ name, ne: [inF, out], type: matType, data: () => map(get(from)) });
  const tensors = [{ name: 'token_embd.weight', ne: [E, V], type: matType, data: () => get('model.embed_tokens.weight') }];
  for (let i = 0; i < L; i++) {
    const p = `model.layers.${i}.`, b = `blk.${i}.`;
    const permQ = (x) => permuteRope(x, Hq, x.length / (Hq * D)), permK = (x) => permuteRope(x, Hkv, x.length / (Hkv * D));
    tensors.push(
      vector(`${b}attn_norm.weight`, `${p}input_layernorm.weight`),
      linear(`${b}attn_q.weight`, `${p}self_attn.q_proj.weight`, Hq * D, E, permQ),
      linear(`${b}attn_k.weight`, `${p}self_attn.k_proj.weight`, Hkv * D, E, permK),
      linear(`${b}attn_v.weight`, `${p}self_attn.v_proj.weight`, Hkv * D, E),
    );
    if (has(`${p}self_attn.q_proj.bias`)) {
      tensors.push(
        vector(`${b}attn_q.bias`, `${p}self_attn.q_proj.bias`, permQ), vector(`${b}attn_k.bias`, `${p}self_attn.k_proj.bias`, permK),
        vector(`${b}attn_v.bias`, `${p}self_attn.v_proj.bias`),
      );
    }
    tensors.push(linear(`${b}attn_output.weight`, `${p}self_attn.o_proj.weight`, E, Hq * D));
    if (has(`${p}self_attn.o_proj.bias`)) tensors.push(vector(`${b}attn_output.bias`, `${p}self_attn.o_proj.bias`));
    tensors.push(
      vector(`${b}ffn_norm.weight`, `${p}post_attention_layernorm.weight`),
      linear(`${b}ffn_gate.weight`, `${p}mlp.gate_proj.weight`, I, E),
      linear(`${b}ffn_up.weight`, `${p}mlp.up_proj.weight`, I, E),
      linear(`${b}ffn_down.weight`, `${p}mlp.down_proj.weight`, E, I),
    );
    for (const [g, h] of [['gate', 'gate'], ['up', 'up'], ['down', 'down']]) {
      if (has(`${p}mlp.${h}_proj.bias`)) tensors.push(vector(`${b}ffn_${g}.bias`, `${p}mlp.${h}_proj.bias`));
    }
  }
  tensors.push(vector('output_norm.weight', 'model.norm.weight'));
  if (has('lm_head.weight')) tensors.push(linear('output.weight', 'lm_head.weight', V, E));
  const metadata = {
    'general.architecture': gguf.string('llama'),
    'general.name': gguf.string('node-attention bench Llama (random weights)'),
    'general.file_type': gguf.u32(FILE_TYPE[dtype]),
    'llama.vocab_size': gguf.u32(V),
    'llama.context_length': gguf.u32(config.max_position_embeddings),
    'llama.embedding_length': gguf.u32(E),
    'llama.feed_forward_length': gguf.u32(I),
    'llama.block_count': gguf.u32(L),
    'llama.attention.head_count': gguf.u32(Hq),
    'llama.attention.head_count_kv': gguf.u32(Hkv),
    'llama.attention.key_length': gguf.u32(D),
    'llama.attention.value_length': gguf.u32(D),
    'llama.attention.layer_norm_rms_epsilon': gguf.f32(config.rms_norm_eps ?? 1e-6),
    'llama.rope.dimension_count': gguf.u32(D),
    'llama.rope.freq_base': gguf.f32(config.rope_theta ?? 10000),
    ...standInVocab(V),
  };
  return writeGguf(file, metadata, tensors);
}
