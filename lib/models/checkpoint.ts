// Reading and writing Hugging Face model folders, for every architecture: config.json,
// generation_config.json (only its eos_token_id), and the weights in model.safetensors or in the
// shards model.safetensors.index.json lists. Every tensor's name, dtype and shape is checked
// against what the config implies, in the headers, before any tensor data is read; then no value
// may be NaN or infinite. A bad folder fails with the file and tensor named.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { formatDims, rangeError, shapeError } from '../errors';
import { parseTokenIds } from '../gpt/config';
import { ModelFileError, SafetensorsFile, writeSafetensors, type SaveDtype, type StoredTensor } from '../gpt/safetensors';
import { firstNonFinite } from '../gpt/weights';
import type { Tensor } from '../types';
import { checkTensor } from '../validate';

/** The parsed JSON of `file`, or undefined when `optional` and the file does not exist. */
export async function readJson(file: string, optional = false): Promise<unknown> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if (optional && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ModelFileError(`${file} is not valid JSON (${(err as Error).message})`);
  }
}

/**
 * The end-of-sequence ids: generation_config.json's eos_token_id when it has one (as transformers'
 * generate reads it), else config.json's (`config`, already parsed), else none.
 */
export async function readEosTokenId(dir: string, config: Record<string, unknown>, vocab: number): Promise<number[]> {
  const generationFile = path.join(dir, 'generation_config.json');
  const generation = await readJson(generationFile, true);
  if (generation !== undefined && (typeof generation !== 'object' || generation === null || Array.isArray(generation))) {
    throw new ModelFileError(`${generationFile} holds ${JSON.stringify(generation)}; expected a JSON object`);
  }
  const fromGeneration = (generation as Record<string, unknown> | undefined)?.eos_token_id;
  if (fromGeneration !== undefined) return parseTokenIds(fromGeneration, vocab, `${generationFile}.eos_token_id`);
  if (config.eos_token_id !== undefined) return parseTokenIds(config.eos_token_id, vocab, `${path.join(dir, 'config.json')}.eos_token_id`);
  return [];
}

/** What a folder's tensors must be. */
export interface TensorSpec {
  /** Every tensor the model needs, by its bare name, with its shape. */
  shapes: ReadonlyMap<string, readonly number[]>;
  /** The bare name of a stored one (e.g. without GPT-2's `transformer.` prefix). */
  bareName(name: string): string;
  /** Stored tensors the model does not use. */
  ignored(bare: string): boolean;
  /** Why an unexpected tensor is one, e.g. "not a GPT-2 tensor for config.json's n_layer 2". */
  unexpected: string;
  /** The config values the shapes come from, e.g. "vocab_size 50, n_embd 32". */
  sizes: string;
}

/** model.safetensors, or the files model.safetensors.index.json's weight_map names, opened. */
async function openWeights(dir: string): Promise<SafetensorsFile[]> {
  const single = path.join(dir, 'model.safetensors');
  const indexFile = path.join(dir, 'model.safetensors.index.json');
  const index = await fsp.access(single).then(() => undefined, () => readJson(indexFile, true));
  if (index === undefined) return [await SafetensorsFile.open(single)];
  const map = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    throw new ModelFileError(`${indexFile}: expected a weight_map object of tensor name -> shard file`);
  }
  const names = new Set<string>();
  for (const [tensor, file] of Object.entries(map as Record<string, unknown>)) {
    // A shard is a file in the folder itself: a path would let an index read anywhere.
    if (typeof file !== 'string' || file.length === 0 || path.basename(file) !== file || file === '.' || file === '..') {
      throw new ModelFileError(`${indexFile}: weight_map.${tensor} is ${JSON.stringify(file)}; expected a file name in ${dir}`);
    }
    names.add(file);
  }
  const files: SafetensorsFile[] = [];
  try {
    for (const name of names) files.push(await SafetensorsFile.open(path.join(dir, name)));
  } catch (err) {
    await Promise.all(files.map((f) => f.close()));
    throw err;
  }
  return files;
}

/** Index of the first 16-bit pattern that is NaN or infinite in `dtype`, or -1. */
function firstNonFiniteBits(data: Uint16Array, dtype: 'F16' | 'BF16'): number {
  const exponent = dtype === 'F16' ? 0x7c00 : 0x7f80;
  for (let i = 0; i < data.length; i++) if ((data[i] & exponent) === exponent) return i;
  return -1;
}

/** The precision a model keeps a folder's weights in by default: F16 or BF16 when every tensor is, else F32. */
export function storedDtype(dtypes: Iterable<string>): SaveDtype {
  const set = new Set(dtypes);
  return set.size === 1 && (set.has('F16') || set.has('BF16')) ? ([...set][0] as SaveDtype) : 'F32';
}

/**
 * Reads the weights of `dir` after checking every name, dtype and shape against `spec` (F32, F16,
 * BF16 or F64 tensors). `sink` gets the stored dtype of every tensor the model needs (by bare
 * name) and returns where each goes; each tensor is then read in its own precision (16-bit ones as
 * their bits), checked for NaN and infinity, and handed over, one at a time, so reading a model
 * holds one tensor besides it.
 */
export async function readTensors(dir: string, spec: TensorSpec,
  sink: (dtypes: ReadonlyMap<string, string>) => (bare: string, tensor: StoredTensor) => void): Promise<void> {
  const files = await openWeights(dir);
  try {
    const stored = new Map<string, { st: SafetensorsFile; name: string }>();
    for (const st of files) {
      for (const name of st.tensors.keys()) {
        const bare = spec.bareName(name);
        if (spec.ignored(bare)) continue;
        if (!spec.shapes.has(bare)) throw new ModelFileError(`${st.file}: unexpected tensor ${name} (${spec.unexpected})`);
        const seen = stored.get(bare);
        if (seen) throw new ModelFileError(`${st.file}: tensor ${bare} appears twice (${seen.name}${seen.st === st ? '' : ` in ${seen.st.file}`} and ${name})`);
        stored.set(bare, { st, name });
      }
    }
    const dtypes = new Map<string, string>();
    for (const [bare, dims] of spec.shapes) {
      const where = stored.get(bare);
      if (where === undefined) {
        throw new ModelFileError(`${files.length === 1 ? files[0].file : dir}: tensor ${bare} is missing`);
      }
      const entry = where.st.tensors.get(where.name)!;
      if (!['F32', 'F16', 'BF16', 'F64'].includes(entry.dtype)) {
        throw new ModelFileError(`${where.st.file}: tensor ${where.name} has dtype ${entry.dtype}; expected F32, F16, BF16 or F64`);
      }
      if (entry.shape.length !== dims.length || entry.shape.some((d, i) => d !== dims[i])) {
        throw new ModelFileError(`${where.st.file}: tensor ${where.name} has shape ${formatDims(entry.shape)}, but config.json ` +
          `(${spec.sizes}) needs ${formatDims(dims)}`);
      }
      dtypes.set(bare, entry.dtype);
    }
    const put = sink(dtypes);
    for (const [bare, { st, name }] of stored) {
      const tensor = await st.readStored(name);
      const bad = tensor.data instanceof Uint16Array ? firstNonFiniteBits(tensor.data, tensor.dtype as 'F16' | 'BF16') : firstNonFinite(tensor.data);
      if (bad >= 0) {
        const value = tensor.data instanceof Uint16Array ? `the ${tensor.dtype} bits 0x${tensor.data[bad].toString(16)}` : tensor.data[bad];
        throw new ModelFileError(`${st.file}: tensor ${name} holds ${value} at index ${bad}`);
      }
      put(bare, tensor);
    }
  } finally {
    await Promise.all(files.map((f) => f.close()));
  }
}

/**
 * Writes config.json and model.safetensors (with the `format: pt` metadata transformers expects)
 * into `dir`, creating it.
 */
export async function writeModelFolder(dir: string, config: Record<string, unknown>, weights: ReadonlyMap<string, Tensor>,
  dtype: SaveDtype): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  await fsp.writeFile(path.join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  await writeSafetensors(path.join(dir, 'model.safetensors'), [...weights], dtype, { format: 'pt' });
}

/** Checks save()'s options; returns the dtype. */
export function saveDtype(dtype: unknown): SaveDtype {
  const d = dtype ?? 'F32';
  if (d !== 'F32' && d !== 'F16' && d !== 'BF16') throw rangeError('opts.dtype', "'F32', 'F16' or 'BF16'", String(d));
  return d;
}

/**
 * Checks weights given in memory (fromWeights) as readTensors checks a folder: only known names
 * (or ignored ones), every needed one present with its shape, every value finite. Returns the
 * needed ones, in the order of `shapes`.
 * @param kind the architecture, for errors: 'GPT-2', 'Llama'
 */
export function checkNamedWeights(weights: ReadonlyMap<string, Tensor> | Record<string, Tensor>, shapes: ReadonlyMap<string, readonly number[]>,
  ignored: (name: string) => boolean, kind: string): Array<[string, Tensor]> {
  const map: ReadonlyMap<string, Tensor> = weights instanceof Map ? weights : new Map(Object.entries(weights as Record<string, Tensor>));
  for (const name of map.keys()) {
    if (!shapes.has(name) && !ignored(name)) throw rangeError('weights', `only ${kind} tensor names`, `unexpected tensor ${name}`);
  }
  for (const [name, dims] of shapes) {
    const tensor = map.get(name);
    if (tensor === undefined) throw rangeError('weights', `a tensor ${name} of shape ${formatDims(dims)}`, 'none');
    checkTensor(tensor, name);
    if (tensor.dims.length !== dims.length || tensor.dims.some((d, i) => d !== dims[i])) {
      throw shapeError(name, `shape ${formatDims(dims)} (from the config)`, `shape ${formatDims(tensor.dims)}`);
    }
    const bad = firstNonFinite(tensor.data);
    if (bad >= 0) throw rangeError(name, 'finite values', `${tensor.data[bad]} at index ${bad}`);
  }
  return [...shapes.keys()].map((name) => [name, map.get(name)!]);
}
