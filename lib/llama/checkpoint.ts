// A Hugging Face Llama / Mistral / Qwen2 folder: config.json, generation_config.json (optional) and
// model.safetensors or its shards, read and written by the shared folder code of
// lib/models/checkpoint.ts with the family's tensor names and shapes (HF layout, [out, in]).
import * as path from 'node:path';
import type { SaveDtype } from '../gpt/safetensors';
import { readEosTokenId, readJson, readTensors, writeModelFolder } from '../models/checkpoint';
import type { Tensor } from '../types';
import { llamaConfigJson, parseLlamaConfig, type ResolvedLlamaConfig } from './config';
import { isIgnoredLlamaTensor, llamaShapes } from './weights';

export async function readLlamaCheckpoint(dir: string): Promise<{ config: ResolvedLlamaConfig; weights: Map<string, Tensor>; eosTokenId: number[] }> {
  const configFile = path.join(dir, 'config.json');
  const json = await readJson(configFile);
  const config = parseLlamaConfig(json, configFile);
  const eosTokenId = await readEosTokenId(dir, json as Record<string, unknown>, config.vocab_size);
  const weights = await readTensors(dir, {
    shapes: llamaShapes(config),
    bareName: (name) => name,
    ignored: (name) => isIgnoredLlamaTensor(name, config),
    unexpected: `not a ${config.model_type} tensor for config.json's num_hidden_layers ${config.num_hidden_layers}` +
      `${config.tie_word_embeddings ? ' and tied embeddings' : ''}`,
    sizes: `vocab_size ${config.vocab_size}, hidden_size ${config.hidden_size}, intermediate_size ${config.intermediate_size}, ` +
      `num_attention_heads ${config.num_attention_heads}, num_key_value_heads ${config.num_key_value_heads}, head_dim ${config.head_dim}`,
  });
  return { config, weights, eosTokenId };
}

export async function writeLlamaCheckpoint(dir: string, config: ResolvedLlamaConfig, weights: ReadonlyMap<string, Tensor>, dtype: SaveDtype,
  eosTokenId: readonly number[]): Promise<void> {
  await writeModelFolder(dir, llamaConfigJson(config, eosTokenId, dtype), weights, dtype);
}
