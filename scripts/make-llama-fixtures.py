#!/usr/bin/python3
# Makes the Llama-family test fixtures of test/llama.test.ts: small random models in Hugging Face's
# folder layout (config.json + model.safetensors, linear weights [out, in]) and, for each, the
# logits of a fixed prompt, of a batch of two equal-length prompts and 8 greedy tokens, computed by
# a PyTorch reference written from transformers' modeling_llama / modeling_mistral / modeling_qwen2
# math (no transformers import): RMSNorm, rotate_half RoPE with HF's float32 inv_freq and angle
# recipe and Llama 3 scaling, repeat_kv GQA, causal (and sliding-window) softmax attention, SwiGLU,
# tied or untied head. Everything runs in float32; a BF16 model's reference runs on its
# bf16-rounded weights.
#
# Run by hand, not in CI (CI has no torch): Debian's python3-torch, so the system interpreter:
#   /usr/bin/python3 scripts/make-llama-fixtures.py
# It rewrites test/fixtures/llama/<name>/ and prints each model's smallest greedy top-1/top-2 logit
# gap (a seed is only kept when that gap is >= 1e-2 and the 8 tokens hold at least 4 distinct
# ones, so exact greedy tokens are a fair test).
import json
import math
import os
import struct

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'llama')

CONFIGS = {
    # Grouped-query attention, 8 query heads over 2 kv heads.
    'gqa': dict(model_type='llama', vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=8, num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=10000.0,
                max_position_embeddings=64, tie_word_embeddings=False),
    # head_dim 12, not hidden_size / heads = 8; Llama's attention and MLP biases.
    'head-dim': dict(model_type='llama', vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, head_dim=12, rms_norm_eps=1e-6, rope_theta=10000.0,
                     max_position_embeddings=64, tie_word_embeddings=False, attention_bias=True, mlp_bias=True),
    # Qwen2: q/k/v biases, tied embeddings, Llama 3 rope scaling (original context 16, so the
    # scaled, interpolated and unchanged frequency bands all occur at head_dim 16).
    'qwen2-llama3': dict(model_type='qwen2', vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, rms_norm_eps=1e-6, rope_theta=50.0,
                         rope_scaling=dict(rope_type='llama3', factor=4.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                           original_max_position_embeddings=16),
                         max_position_embeddings=64, tie_word_embeddings=True, use_sliding_window=False),
    # Mistral with a 4-key window, shorter than the prompt (10) and the generation (18).
    'mistral': dict(model_type='mistral', vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=10000.0,
                    max_position_embeddings=64, tie_word_embeddings=False, sliding_window=4),
    # BF16 weights in the file.
    'bf16': dict(model_type='llama', vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=10000.0,
                 max_position_embeddings=64, tie_word_embeddings=False, torch_dtype='bfloat16'),
}
PROMPT = [3, 17, 42, 0, 49, 8, 8, 21, 5, 30]
BATCH = [[7, 1, 63, 12, 12, 40], [22, 5, 9, 31, 2, 60]]
NEW_TOKENS = 8


def defaults(c):
    c = dict(c)
    c.setdefault('num_key_value_heads', c['num_attention_heads'])
    c.setdefault('head_dim', c['hidden_size'] // c['num_attention_heads'])
    c.setdefault('attention_bias', False)
    c.setdefault('mlp_bias', False)
    c.setdefault('rope_scaling', None)
    c.setdefault('sliding_window', None)
    return c


def shapes(c):
    E, I, D, Hq, Hkv, V = c['hidden_size'], c['intermediate_size'], c['head_dim'], c['num_attention_heads'], c['num_key_value_heads'], c['vocab_size']
    qkv_bias = c['model_type'] == 'qwen2' or c['attention_bias']
    o_bias = c['model_type'] == 'llama' and c['attention_bias']
    out = [('model.embed_tokens.weight', [V, E])]
    for i in range(c['num_hidden_layers']):
        p = f'model.layers.{i}.'
        out.append((p + 'input_layernorm.weight', [E]))
        for name, n in (('q', Hq * D), ('k', Hkv * D), ('v', Hkv * D)):
            out.append((f'{p}self_attn.{name}_proj.weight', [n, E]))
            if qkv_bias:
                out.append((f'{p}self_attn.{name}_proj.bias', [n]))
        out.append((p + 'self_attn.o_proj.weight', [E, Hq * D]))
        if o_bias:
            out.append((p + 'self_attn.o_proj.bias', [E]))
        out.append((p + 'post_attention_layernorm.weight', [E]))
        for name, n, k in (('gate', I, E), ('up', I, E), ('down', E, I)):
            out.append((f'{p}mlp.{name}_proj.weight', [n, k]))
            if c['mlp_bias']:
                out.append((f'{p}mlp.{name}_proj.bias', [n]))
    out.append(('model.norm.weight', [E]))
    if not c['tie_word_embeddings']:
        out.append(('lm_head.weight', [V, E]))
    return out


def random_weights(c, seed):
    # Activations of order 1: embeddings std 1, weights std 1/sqrt(fan_in) (x1.5 on q/k so the
    # attention is not uniform), norm gains 1 +- 0.2, biases std 0.2. Tied embeddings: std 0.2 and
    # o/down x3, else the residual stream's own token embedding decides every greedy token.
    tied = c['tie_word_embeddings']
    g = torch.Generator().manual_seed(seed)
    w = {}
    for name, dims in shapes(c):
        r = torch.randn(*dims, generator=g, dtype=torch.float32)
        if name.endswith('norm.weight'):
            t = 1 + 0.2 * r
        elif name.endswith('.bias'):
            t = 0.2 * r
        elif name == 'model.embed_tokens.weight':
            t = r * (0.2 if tied else 1.0)
        else:
            gain = 1.5 if ('q_proj' in name or 'k_proj' in name) else 3.0 if tied and ('o_proj' in name or 'down_proj' in name) else 1.0
            t = r / math.sqrt(dims[1]) * gain
        w[name] = t.contiguous()
    return w


# ----------------------------------------------------------------------------------------------
# The reference: transformers' float32 math, step for step.

def rms_norm(x, weight, eps):
    variance = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(variance + eps))


def inv_freq(c):
    D, base = c['head_dim'], c['rope_theta']
    inv = 1.0 / (base ** (torch.arange(0, D, 2, dtype=torch.int64).to(dtype=torch.float) / D))
    s = c['rope_scaling']
    if s is None:
        return inv
    # _compute_llama3_parameters
    factor, low, high, old = s['factor'], s['low_freq_factor'], s['high_freq_factor'], s['original_max_position_embeddings']
    low_wavelen, high_wavelen = old / low, old / high
    wavelen = 2 * math.pi / inv
    inv_llama = torch.where(wavelen > low_wavelen, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * inv_llama / factor + smooth * inv_llama
    is_medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
    return torch.where(is_medium, smoothed, inv_llama)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def forward(c, w, tokens):
    """tokens: LongTensor [B, S] -> logits [B, S, V], float32."""
    B, S = tokens.shape
    E, D, Hq, Hkv = c['hidden_size'], c['head_dim'], c['num_attention_heads'], c['num_key_value_heads']
    eps = c['rms_norm_eps']
    x = w['model.embed_tokens.weight'][tokens]
    positions = torch.arange(S)[None, :].expand(B, S)
    freqs = (inv_freq(c)[None, :, None].float() @ positions[:, None, :].float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]
    i = torch.arange(S)[:, None]
    j = torch.arange(S)[None, :]
    visible = j <= i
    if c['sliding_window'] is not None:
        visible = visible & (j > i - c['sliding_window'])
    mask = torch.zeros(S, S).masked_fill(~visible, float('-inf'))

    def linear(h, name):
        bias = w.get(name + '.bias')
        return torch.nn.functional.linear(h, w[name + '.weight'], bias)

    for layer in range(c['num_hidden_layers']):
        p = f'model.layers.{layer}.'
        h = rms_norm(x, w[p + 'input_layernorm.weight'], eps)
        q = linear(h, p + 'self_attn.q_proj').view(B, S, Hq, D).transpose(1, 2)
        k = linear(h, p + 'self_attn.k_proj').view(B, S, Hkv, D).transpose(1, 2)
        v = linear(h, p + 'self_attn.v_proj').view(B, S, Hkv, D).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(Hq // Hkv, dim=1)  # repeat_kv
        v = v.repeat_interleave(Hq // Hkv, dim=1)
        scores = q @ k.transpose(2, 3) * D ** -0.5 + mask
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32)
        ctx = (probs @ v).transpose(1, 2).reshape(B, S, Hq * D)
        x = x + linear(ctx, p + 'self_attn.o_proj')
        h = rms_norm(x, w[p + 'post_attention_layernorm.weight'], eps)
        a = torch.nn.functional.silu(linear(h, p + 'mlp.gate_proj')) * linear(h, p + 'mlp.up_proj')
        x = x + linear(a, p + 'mlp.down_proj')
    x = rms_norm(x, w['model.norm.weight'], eps)
    head = w['model.embed_tokens.weight'] if c['tie_word_embeddings'] else w['lm_head.weight']
    return x @ head.T


def greedy(c, w, prompt):
    tokens, gaps = list(prompt), []
    for _ in range(NEW_TOKENS):
        row = forward(c, w, torch.tensor([tokens]))[0, -1]
        top = torch.topk(row, 2).values
        gaps.append(float(top[0] - top[1]))
        tokens.append(int(row.argmax()))
    return tokens[len(prompt):], min(gaps)


# ----------------------------------------------------------------------------------------------

def write_safetensors(path, tensors, dtype):
    header, chunks, offset = {'__metadata__': {'format': 'pt'}}, [], 0
    for name, t in tensors:
        if dtype == 'BF16':
            data = t.to(torch.bfloat16).view(torch.int16).numpy().tobytes()
        else:
            data = t.numpy().astype('<f4').tobytes()
        header[name] = {'dtype': dtype, 'shape': list(t.shape), 'data_offsets': [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(',', ':'))
    text += ' ' * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text.encode())
        for chunk in chunks:
            f.write(chunk)


def floats(t):
    return [float(v) for v in t.flatten().tolist()]


def main():
    torch.set_grad_enabled(False)
    for name, raw in CONFIGS.items():
        c = defaults(raw)
        dtype = 'BF16' if raw.get('torch_dtype') == 'bfloat16' else 'F32'
        for seed in range(1, 100):
            w = random_weights(c, seed)
            if dtype == 'BF16':
                w = {k: v.to(torch.bfloat16).to(torch.float32) for k, v in w.items()}
            tokens, gap = greedy(c, w, PROMPT)
            batch_logits = forward(c, w, torch.tensor(BATCH))
            if gap >= 1e-2 and len(set(tokens)) >= 4:
                break
        folder = os.path.join(OUT, name)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, 'config.json'), 'w') as f:
            json.dump(raw, f, indent=2)
            f.write('\n')
        write_safetensors(os.path.join(folder, 'model.safetensors'), [(n, w[n]) for n, _ in shapes(c)], dtype)
        logits = forward(c, w, torch.tensor([PROMPT]))
        expected = {
            'seed': seed, 'dtype': dtype, 'prompt': PROMPT, 'logits': floats(logits),
            'batch': BATCH, 'batchLogits': floats(batch_logits), 'greedy': tokens, 'minGreedyGap': gap,
        }
        with open(os.path.join(folder, 'expected.json'), 'w') as f:
            json.dump(expected, f)
            f.write('\n')
        print(f'{name}: seed {seed}, {dtype}, greedy {tokens}, smallest top-2 gap {gap:.3g}, '
              f'max |logit| {float(logits.abs().max()):.3g}')


if __name__ == '__main__':
    main()
