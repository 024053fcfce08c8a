// The native backend's decoder: the spec's arrays handed to the addon once, in the order
// native/binding/decoder_binding.cc reads them; each step is one addon call (or one pool job).
import type { DecoderModel, DecoderSpec, LinearSpec, NormSpec } from '../models/decoder-spec';
import type { Binding } from './binding';
import { DTYPE_CODES, type Wire } from './wire';

export function createNativeDecoder(binding: Binding, wire: Wire, spec: DecoderSpec): DecoderModel {
  const arrays: Array<Float32Array | Uint16Array | null> = [spec.tokens.data, spec.positions?.data ?? null];
  const norm = (n: NormSpec) => arrays.push(n.weight, n.bias);
  const linear = (l: LinearSpec) => arrays.push(l.w.data, l.bias);
  for (const layer of spec.layers) {
    norm(layer.norm1);
    linear(layer.qkv);
    linear(layer.o);
    norm(layer.norm2);
    linear(layer.up);
    linear(layer.down);
  }
  norm(spec.finalNorm);
  arrays.push(spec.head?.data ?? null, spec.rope?.invFreq ?? null);
  const decoder = new binding.Decoder(wire.decoder(spec), arrays);
  return {
    state(B, maxLen, pad, kvDtype) {
      const state = new binding.DecoderState(decoder, B, maxLen, pad, DTYPE_CODES[kvDtype]);
      return {
        get length() {
          return state.length;
        },
        step: (tokens, S, logits, allPositions, probs) =>
          probs ? state.step(tokens, S, logits, allPositions, probs.layer, probs.out) : state.step(tokens, S, logits, allPositions),
        stepAsync: (tokens, S, logits, allPositions) => state.stepAsync(tokens, S, logits, allPositions),
        truncate: (n) => state.truncate(n),
        dispose: () => state.dispose(),
      };
    },
  };
}
