// The public surface of node-attention. Everything exported here exists on both backends.
export type { Tensor, BackendName, BackendInfo, MatmulOptions } from './types';
export type { AttentionMask, AttentionOptions, AttentionResult, QkMatmulOutputMode } from './types';
export { getBackend, useBackend, backendInfo, setNumThreads, getNumThreads, setSimd } from './backend';
export { dot, matmul, linear } from './ops';
export { attention, attentionAsync } from './attention';
export { MultiHeadAttention } from './mha';
export type { MultiHeadAttentionForwardOptions } from './mha';
export { KVCache } from './kv-cache';
export type { MultiHeadAttentionConfig, MultiHeadAttentionWeights, KVCacheConfig } from './validate-layers';
export { SafetensorsFile, writeSafetensors, ModelFileError } from './gpt/safetensors';
export type { TensorEntry, SaveDtype } from './gpt/safetensors';
export { GPT } from './gpt/model';
export { GPTDecoder } from './gpt/decoder';
export type { GenerateOptions, GenerationConfig, RandomOptions, SaveOptions } from './gpt/model';
export type { GPTConfig } from './gpt/config';
export { SUPPORTED_MODEL_TYPES } from './gpt/config';
export { attentionHeatmapSVG } from './heatmap';
export type { HeatmapOptions, HeatmapScale } from './heatmap';
