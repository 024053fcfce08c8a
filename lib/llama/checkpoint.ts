// A Hugging Face Llama / Mistral / Qwen2 folder: config.json, generation_config.json (optional) and
// model.safetensors or its shards, read and written by the shared folder code of
// lib/models/checkpoint.ts with the family's tensor names and shapes (HF layout, [out, in]).
import * as path from 'node:path';
import type { SaveDtype } from '../gpt/safetensors';
import type { DecoderSpec, WeightDtype } from '../models/decoder-spec';
import { readEosTokenId, readJson, readTensors, storedDtype, writeModelFolder } from '../models/checkpoint';
import type { WeightLayout } from '../models/weight-layout';
import type { Tensor } from '../types';
import { llamaConfigJson, parseLlamaConfig, type ResolvedLlamaConfig } from './config';
import { isIgnoredLlamaTensor, llamaLayout, llamaShapes } from './weights';

/** As GPT's readCheckpoint: every tensor straight into the model's arrays (llamaLayout), kept in `dtype` or the file's precision. */
export async function readLlamaCheckpoint(dir: string, dtype: WeightDtype | undefined):
  Promise<{ config: ResolvedLlamaConfig; layout: WeightLayout; spec: DecoderSpec; eosTokenId: number[] }> {
  const configFile = path.join(dir, 'config.json');
  const json = await readJson(configFile);
  const config = parseLlamaConfig(json, configFile);
  const eosTokenId = await readEosTokenId(dir, json as Record<string, unknown>, config.vocab_size);
  let model: ReturnType<typeof llamaLayout> | undefined;
  await readTensors(dir, {
    shapes: llamaShapes(config),
    bareName: (name) => name,
    ignored: (name) => isIgnoredLlamaTensor(name, config),
    unexpected: `not a ${config.model_type} tensor for config.json's num_hidden_layers ${config.num_hidden_layers}` +
      `${config.tie_word_embeddings ? ' and tied embeddings' : ''}`,
    sizes: `vocab_size ${config.vocab_size}, hidden_size ${config.hidden_size}, intermediate_size ${config.intermediate_size}, ` +
      `num_attention_heads ${config.num_attention_heads}, num_key_value_heads ${config.num_key_value_heads}, head_dim ${config.head_dim}`,
  }, (dtypes) => {
    const built = llamaLayout(config, dtype ?? storedDtype(dtypes.values()));
    model = built;
    return (bare, tensor) => built.layout.put(bare, tensor);
  });
  return { config, ...model!, eosTokenId };
}

export async function writeLlamaCheckpoint(dir: string, config: ResolvedLlamaConfig, weights: ReadonlyMap<string, Tensor>, dtype: SaveDtype,
  eosTokenId: readonly number[]): Promise<void> {
  await writeModelFolder(dir, llamaConfigJson(config, eosTokenId, dtype), weights, dtype);
}
