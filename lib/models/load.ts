// loadModel: one entry point for every Hugging Face folder this package runs; config.json's
// model_type picks the class.
import * as path from 'node:path';
import { typeError } from '../errors';
import { ModelFileError } from '../gpt/safetensors';
import { GPT, type LoadOptions } from '../gpt/model';
import { Llama } from '../llama/model';
import { readJson } from './checkpoint';
import { architectureOf, checkModelType } from './model-types';

/**
 * Loads a Hugging Face model folder: a GPT for model_type 'gpt2', a Llama for 'llama', 'mistral'
 * and 'qwen2' (SUPPORTED_MODEL_TYPES). A missing or other model_type is an error that names it.
 * A tokenizer.json in the folder becomes the model's tokenizer (for generateText).
 * @param opts dtype (the weights' precision, default the file's) and kvDtype (the KV caches',
 *   default 'F32'): LoadOptions, checked by the class's load
 * @example
 * const model = await loadModel('./SmolLM-135M');
 * const ids = model.generate([1, 2, 3], { maxNewTokens: 20 });
 */
export async function loadModel(dir: string, opts?: LoadOptions): Promise<GPT | Llama> {
  if (typeof dir !== 'string' || dir.length === 0) throw typeError('dir', 'a non-empty folder path', dir);
  const file = path.join(dir, 'config.json');
  const json = await readJson(file);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ModelFileError(`${file} holds ${JSON.stringify(json)}; expected a JSON object`);
  const type = checkModelType((json as Record<string, unknown>).model_type, `${file}.model_type`);
  return architectureOf(type) === 'gpt2' ? GPT.load(dir, opts) : Llama.load(dir, opts);
}
