// Text <-> token ids for a model folder that ships a tokenizer.json (every Hugging Face LLM does),
// read with @huggingface/tokenizers: Hugging Face's own pure-JS port of the Rust `tokenizers` crate
// (the one transformers.js runs), which reads tokenizer.json as the Rust library writes it (BPE,
// WordPiece, Unigram; byte-level, Metaspace and the other pre-tokenizers and decoders), with no
// native code and no dependencies of its own, so it adds nothing to install next to the addon.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { typeError } from '../errors';
import { ModelFileError } from '../gpt/safetensors';
import { readJson } from './checkpoint';

/** A model folder's tokenizer (tokenizer.json); see GPT.tokenizer, Llama.tokenizer. */
export interface TextTokenizer {
  /** The token ids of `text`, with the special tokens the tokenizer adds (e.g. a Llama's BOS). */
  encode(text: string): number[];
  /**
   * The text of `ids`.
   * @param opts skipSpecialTokens: leave out special tokens such as an end-of-sequence (default false)
   */
  decode(ids: ArrayLike<number>, opts?: { skipSpecialTokens?: boolean }): string;
}

/**
 * `dir`'s tokenizer.json (with tokenizer_config.json when there is one), or null when the folder
 * has no tokenizer.json. A file that is there but unreadable is an error naming it.
 */
export async function readTokenizer(dir: string): Promise<TextTokenizer | null> {
  const file = path.join(dir, 'tokenizer.json');
  const exists = await fsp.access(file).then(() => true, () => false);
  if (!exists) return null;
  const json = await readJson(file);
  const config = await readJson(path.join(dir, 'tokenizer_config.json'), true);
  let hf: HfTokenizer;
  try {
    hf = new HfTokenizer(json as object, (config ?? {}) as object);
  } catch (err) {
    throw new ModelFileError(`${file} is not a tokenizer @huggingface/tokenizers can read (${(err as Error).message})`);
  }
  return Object.freeze({
    encode(text: string): number[] {
      if (typeof text !== 'string') throw typeError('text', 'a string', text);
      return hf.encode(text).ids;
    },
    decode(ids: ArrayLike<number>, opts?: { skipSpecialTokens?: boolean }): string {
      return hf.decode(Array.from(ids), { skip_special_tokens: opts?.skipSpecialTokens ?? false });
    },
  });
}

/** The error generateText throws for a model without a tokenizer. */
export function noTokenizerError(): Error {
  return new Error('generateText needs a tokenizer, and this model has none: its folder had no tokenizer.json ' +
    '(or it was not loaded from a folder). Put the model\'s tokenizer.json next to its config.json, or call generate() with token ids.');
}
