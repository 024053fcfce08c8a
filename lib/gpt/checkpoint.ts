// A Hugging Face style GPT-2 folder: config.json + model.safetensors, and generation_config.json
// when there is one (only its eos_token_id is read). Reading checks config.json,
// then every tensor's name, dtype and shape in the safetensors header before any data is read,
// then that no value is NaN or infinite, so a bad folder fails with the tensor's name instead of
// loading as a model that computes garbage.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { formatDims } from '../errors';
import type { Tensor } from '../types';
import { configJson, parseConfig, parseTokenIds, type GPTConfig } from './config';
import { ModelFileError, SafetensorsFile, writeSafetensors, type SaveDtype } from './safetensors';
import { expectedShapes, firstNonFinite, isIgnoredTensor } from './weights';

const PREFIX = 'transformer.';

/** The parsed JSON of `file`, or undefined when `optional` and the file does not exist. */
async function readJson(file: string, optional = false): Promise<unknown> {
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
 * Reads config.json, generation_config.json (optional) and model.safetensors from `dir`. Tensor
 * names may carry a `transformer.` prefix; the buffers GPT-2 checkpoints carry but the model does
 * not use are skipped.
 * @returns the checked config, the weights under their bare GPT-2 names, as float32, and the
 *   end-of-sequence ids: generation_config.json's eos_token_id when it has one (as transformers'
 *   generate reads it), else config.json's, else none
 */
export async function readCheckpoint(dir: string): Promise<{ config: GPTConfig; weights: Map<string, Tensor>; eosTokenId: number[] }> {
  const configFile = path.join(dir, 'config.json');
  const json = await readJson(configFile);
  const config = parseConfig(json, configFile);
  const generationFile = path.join(dir, 'generation_config.json');
  const generation = await readJson(generationFile, true);
  if (generation !== undefined && (typeof generation !== 'object' || generation === null || Array.isArray(generation))) {
    throw new ModelFileError(`${generationFile} holds ${JSON.stringify(generation)}; expected a JSON object`);
  }
  const fromGeneration = (generation as Record<string, unknown> | undefined)?.eos_token_id;
  const fromConfig = (json as Record<string, unknown>).eos_token_id;
  const eosTokenId = fromGeneration !== undefined ? parseTokenIds(fromGeneration, config.vocab_size, `${generationFile}.eos_token_id`)
    : fromConfig !== undefined ? parseTokenIds(fromConfig, config.vocab_size, `${configFile}.eos_token_id`) : [];
  const file = path.join(dir, 'model.safetensors');
  const st = await SafetensorsFile.open(file);
  try {
    const shapes = expectedShapes(config);
    const stored = new Map<string, string>();
    for (const name of st.tensors.keys()) {
      const bare = name.startsWith(PREFIX) ? name.slice(PREFIX.length) : name;
      if (isIgnoredTensor(bare)) continue;
      if (!shapes.has(bare)) {
        throw new ModelFileError(`${file}: unexpected tensor ${name} (not a GPT-2 tensor for config.json's n_layer ${config.n_layer})`);
      }
      if (stored.has(bare)) throw new ModelFileError(`${file}: tensor ${bare} appears twice (${stored.get(bare)} and ${name})`);
      stored.set(bare, name);
    }
    for (const [bare, dims] of shapes) {
      const name = stored.get(bare);
      if (name === undefined) throw new ModelFileError(`${file}: tensor ${bare} is missing`);
      const entry = st.tensors.get(name)!;
      if (!['F32', 'F16', 'BF16', 'F64'].includes(entry.dtype)) {
        throw new ModelFileError(`${file}: tensor ${name} has dtype ${entry.dtype}; expected F32, F16, BF16 or F64`);
      }
      if (entry.shape.length !== dims.length || entry.shape.some((d, i) => d !== dims[i])) {
        throw new ModelFileError(`${file}: tensor ${name} has shape ${formatDims(entry.shape)}, but config.json ` +
          `(vocab_size ${config.vocab_size}, n_positions ${config.n_positions}, n_embd ${config.n_embd}) needs ${formatDims(dims)}`);
      }
    }
    const weights = new Map<string, Tensor>();
    for (const [bare, name] of stored) {
      const tensor = await st.read(name);
      const bad = firstNonFinite(tensor.data);
      if (bad >= 0) throw new ModelFileError(`${file}: tensor ${name} holds ${tensor.data[bad]} at index ${bad}`);
      weights.set(bare, tensor);
    }
    return { config, weights, eosTokenId };
  } finally {
    await st.close();
  }
}

/**
 * Writes config.json (with eos_token_id when `eosTokenId` is not empty) and model.safetensors (with
 * the `format: pt` metadata transformers expects) into `dir`, creating it.
 */
export async function writeCheckpoint(dir: string, config: GPTConfig, weights: ReadonlyMap<string, Tensor>, dtype: SaveDtype,
  eosTokenId: readonly number[]): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  await fsp.writeFile(path.join(dir, 'config.json'), `${JSON.stringify(configJson(config, eosTokenId), null, 2)}\n`);
  await writeSafetensors(path.join(dir, 'model.safetensors'), [...weights], dtype, { format: 'pt' });
}
