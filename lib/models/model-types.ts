// The config.json model_type values this package loads and the architecture that runs each: one
// list for loadModel, GPT.load, Llama.load and the SUPPORTED_MODEL_TYPES export.
import { rangeError, typeError } from '../errors';

const ARCHITECTURE = { gpt2: 'gpt2', llama: 'llama', mistral: 'llama', qwen2: 'llama' } as const;

export type ModelType = keyof typeof ARCHITECTURE;
export type Architecture = (typeof ARCHITECTURE)[ModelType];

/** Every model_type loadModel reads; a folder of any other type is refused with its model_type named. */
export const SUPPORTED_MODEL_TYPES: readonly string[] = Object.freeze(Object.keys(ARCHITECTURE));

const quoted = (types: readonly string[]): string => types.map((t) => `'${t}'`).join(', ');

/**
 * Checks a config's model_type against the supported list and then against `accepted` (the types
 * one class loads), naming both lists in the error.
 * @param where how to name the value in errors, e.g. '/m/config.json.model_type'
 */
export function checkModelType(value: unknown, where: string, accepted: Architecture | null = null): ModelType {
  if (typeof value !== 'string') throw typeError(where, `a model_type string (${quoted(SUPPORTED_MODEL_TYPES)})`, value);
  if (!SUPPORTED_MODEL_TYPES.includes(value)) {
    throw rangeError(where, `a supported model_type (${quoted(SUPPORTED_MODEL_TYPES)})`, JSON.stringify(value));
  }
  const type = value as ModelType;
  if (accepted !== null && ARCHITECTURE[type] !== accepted) {
    const own = SUPPORTED_MODEL_TYPES.filter((t) => ARCHITECTURE[t as ModelType] === accepted);
    throw rangeError(where, `${quoted(own)} (loadModel() picks the class for any of ${quoted(SUPPORTED_MODEL_TYPES)})`, JSON.stringify(value));
  }
  return type;
}

/** The architecture that runs a (checked) model_type. */
export function architectureOf(type: ModelType): Architecture {
  return ARCHITECTURE[type];
}
