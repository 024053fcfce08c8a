// A minimal protobuf writer for the parts of onnx.proto the bench needs (ModelProto, GraphProto,
// NodeProto, AttributeProto, TensorProto, ValueInfoProto), so peer models are built at run time
// in JS with no Python and no .onnx files in the repository.
// Field numbers are those of onnx/onnx.proto (IR version 11).

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

/** TensorProto.DataType values used here. */
export const DataType = Object.freeze({ FLOAT: 1, INT32: 6, INT64: 7 });

const AttrType = { FLOAT: 1, INT: 2, STRING: 3, FLOATS: 6, INTS: 7 };

class Writer {
  constructor() {
    this.chunks = [];
  }

  raw(bytes) {
    this.chunks.push(bytes);
    return this;
  }

  // Varints carry int32/int64/enums; negatives take ten bytes (two's complement), as protobuf says.
  varint(value) {
    let v = BigInt.asUintN(64, BigInt(value));
    const out = [];
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v !== 0n) byte |= 0x80;
      out.push(byte);
    } while (v !== 0n);
    return this.raw(Uint8Array.from(out));
  }

  tag(field, wire) {
    return this.varint((field << 3) | wire);
  }

  int(field, value) {
    return this.tag(field, WIRE_VARINT).varint(value);
  }

  float(field, value) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    return this.tag(field, WIRE_I32).raw(b);
  }

  bytes(field, value) {
    return this.tag(field, WIRE_LEN).varint(value.length).raw(value);
  }

  string(field, value) {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  finish() {
    const size = this.chunks.reduce((n, c) => n + c.length, 0);
    const out = new Uint8Array(size);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

/** Attribute value helpers: ONNX attributes are typed, so a float that happens to be whole stays a float. */
export const attr = {
  int: (value) => ({ type: AttrType.INT, value }),
  float: (value) => ({ type: AttrType.FLOAT, value }),
  ints: (value) => ({ type: AttrType.INTS, value }),
  floats: (value) => ({ type: AttrType.FLOATS, value }),
  string: (value) => ({ type: AttrType.STRING, value }),
};

function encodeAttribute(name, { type, value }) {
  const w = new Writer().string(1, name);
  if (type === AttrType.FLOAT) w.float(2, value);
  else if (type === AttrType.INT) w.int(3, value);
  else if (type === AttrType.STRING) w.string(4, value);
  else if (type === AttrType.FLOATS) for (const v of value) w.float(7, v);
  else if (type === AttrType.INTS) for (const v of value) w.int(8, v);
  return w.int(20, type).finish();
}

/**
 * NodeProto.
 * @param {{op: string, inputs: string[], outputs: string[], attrs?: object, domain?: string, name?: string}} n
 */
export function node({ op, inputs, outputs, attrs = {}, domain = '', name }) {
  const w = new Writer();
  for (const i of inputs) w.string(1, i);
  for (const o of outputs) w.string(2, o);
  w.string(3, name ?? `${op}_${outputs[0]}`);
  w.string(4, op);
  for (const [key, value] of Object.entries(attrs)) w.bytes(5, encodeAttribute(key, value));
  if (domain) w.string(7, domain);
  return w.finish();
}

/** TensorProto with raw little-endian data (an initializer). */
export function tensor(name, dims, data) {
  const type = data instanceof Float32Array ? DataType.FLOAT
    : data instanceof Int32Array ? DataType.INT32
      : data instanceof BigInt64Array ? DataType.INT64 : null;
  if (type === null) throw new TypeError(`tensor ${name}: unsupported data ${data?.constructor?.name}`);
  const w = new Writer();
  for (const d of dims) w.int(1, d);
  w.int(2, type);
  w.string(8, name);
  w.bytes(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return w.finish();
}

/** ValueInfoProto for a tensor; a string in `dims` is a symbolic dimension. */
export function valueInfo(name, elemType, dims) {
  const shape = new Writer();
  for (const d of dims) {
    const dim = typeof d === 'string' ? new Writer().string(2, d) : new Writer().int(1, d);
    shape.bytes(1, dim.finish());
  }
  const tensorType = new Writer().int(1, elemType).bytes(2, shape.finish()).finish();
  const typeProto = new Writer().bytes(1, tensorType).finish();
  return new Writer().string(1, name).bytes(2, typeProto).finish();
}

/** GraphProto. Every argument but `name` is an array of already encoded messages. */
export function graph({ name, nodes, inputs, outputs, initializers = [] }) {
  const w = new Writer();
  for (const n of nodes) w.bytes(1, n);
  w.string(2, name);
  for (const t of initializers) w.bytes(5, t);
  for (const i of inputs) w.bytes(11, i);
  for (const o of outputs) w.bytes(12, o);
  return w.finish();
}

/**
 * ModelProto, serialized: what InferenceSession.create() takes as a Uint8Array.
 * @param {Uint8Array} graphBytes from graph()
 * @param {{domain: string, version: number}[]} opsets
 */
export function model(graphBytes, opsets, irVersion = 11) {
  const w = new Writer().int(1, irVersion).string(2, 'node-attention-bench');
  w.bytes(7, graphBytes);
  for (const { domain, version } of opsets) {
    w.bytes(8, new Writer().string(1, domain).int(2, version).finish());
  }
  return w.finish();
}
