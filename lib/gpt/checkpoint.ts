// A Hugging Face style GPT-2 folder: config.json + model.safetensors. Reading checks config.json,
// then every tensor's name, dtype and shape in the safetensors header before any data is read,
// then that no value is NaN or infinite, so a bad folder fails with the tensor's name instead of
// loading as a model that computes garbage.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { formatDims } from '../errors';
import type { Tensor } from '../types';
import { configJson, parseConfig, type GPTConfig } from './config';
import { ModelFileError, SafetensorsFile, writeSafetensors, type SaveDtype } from './safetensors';
import { expectedShapes, firstNonFinite, isIgnoredTensor } from './weights';

const PREFIX = 'transformer.';

/**
 * Reads config.json and model.safetensors from `dir`. Tensor names may carry a `transformer.`
 * prefix; the buffers GPT-2 checkpoints carry but the model does not use are skipped.
 * @returns the checked config and the weights under their bare GPT-2 names, as float32
 */
export async function readCheckpoint(dir: string): Promise<{ config: GPTConfig; weights: Map<string, Tensor> }> {
  const configFile = path.join(dir, 'config.json');
  let json: unknown;
  try {
    json = JSON.parse(await fsp.readFile(configFile, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code) throw err;
    throw new ModelFileError(`${configFile} is not valid JSON (${(err as Error).message})`);
  }
  const config = parseConfig(json, configFile);
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
    return { config, weights };
  } finally {
    await st.close();
  }
}

/** Writes config.json and model.safetensors (with the `format: pt` metadata transformers expects) into `dir`, creating it. */
export async function writeCheckpoint(dir: string, config: GPTConfig, weights: ReadonlyMap<string, Tensor>, dtype: SaveDtype): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  await fsp.writeFile(path.join(dir, 'config.json'), `${JSON.stringify(configJson(config), null, 2)}\n`);
  await writeSafetensors(path.join(dir, 'model.safetensors'), [...weights], dtype, { format: 'pt' });
}
