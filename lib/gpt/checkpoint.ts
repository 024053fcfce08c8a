// A Hugging Face style GPT-2 folder: config.json + model.safetensors, and generation_config.json
// when there is one (only its eos_token_id is read), read and written by the shared folder code of
// lib/models/checkpoint.ts with GPT-2's tensor names and shapes.
import * as path from 'node:path';
import type { Tensor } from '../types';
import type { DecoderSpec, WeightDtype } from '../models/decoder-spec';
import { readEosTokenId, readJson, readTensors, storedDtype, writeModelFolder } from '../models/checkpoint';
import type { WeightLayout } from '../models/weight-layout';
import { configJson, parseConfig, type GPTConfig } from './config';
import type { SaveDtype } from './safetensors';
import { expectedShapes, gptLayout, isIgnoredTensor } from './weights';

const PREFIX = 'transformer.';

/**
 * Reads config.json, generation_config.json (optional) and model.safetensors (or its shards) from
 * `dir` (lib/models/checkpoint.ts). Tensor names may carry a `transformer.` prefix; the buffers
 * GPT-2 checkpoints carry but the model does not use are skipped.
 * Each tensor goes straight into the model's arrays (gptLayout), kept in `dtype`, by default the
 * file's own precision (storedDtype).
 * @returns the checked config, the model's layout and spec, and the end-of-sequence ids
 */
export async function readCheckpoint(dir: string, dtype: WeightDtype | undefined):
  Promise<{ config: GPTConfig; layout: WeightLayout; spec: DecoderSpec; eosTokenId: number[] }> {
  const configFile = path.join(dir, 'config.json');
  const json = await readJson(configFile);
  const config = parseConfig(json, configFile);
  const eosTokenId = await readEosTokenId(dir, json as Record<string, unknown>, config.vocab_size);
  let model: ReturnType<typeof gptLayout> | undefined;
  await readTensors(dir, {
    shapes: expectedShapes(config),
    bareName: (name) => (name.startsWith(PREFIX) ? name.slice(PREFIX.length) : name),
    ignored: isIgnoredTensor,
    unexpected: `not a GPT-2 tensor for config.json's n_layer ${config.n_layer}`,
    sizes: `vocab_size ${config.vocab_size}, n_positions ${config.n_positions}, n_embd ${config.n_embd}`,
  }, (dtypes) => {
    const built = gptLayout(config, dtype ?? storedDtype(dtypes.values()));
    model = built;
    return (bare, tensor) => built.layout.put(bare, tensor);
  });
  return { config, ...model!, eosTokenId };
}

/** Writes config.json (with eos_token_id when `eosTokenId` is not empty) and model.safetensors into `dir`, creating it. */
export async function writeCheckpoint(dir: string, config: GPTConfig, weights: ReadonlyMap<string, Tensor>, dtype: SaveDtype,
  eosTokenId: readonly number[]): Promise<void> {
  await writeModelFolder(dir, configJson(config, eosTokenId), weights, dtype);
}
