#!/usr/bin/python3
"""Writes test/fixtures/mla/<name>.json: small random DeepSeek-V2 attention layers (Multi-head Latent
Attention), their inputs and the outputs of Hugging Face's DeepseekV2Attention.forward.

The math is transcribed from modeling_deepseek.py (DeepseekV2Attention, DeepseekV2RMSNorm,
DeepseekV2RotaryEmbedding, rotate_half, apply_rotary_pos_emb with its view/transpose/reshape
de-interleave), torch only, without a KV cache: one causal forward over the whole sequence. Weights
and inputs are float32 values; the expected outputs are computed in float64 from them, so the only
error a float32 implementation shows against them is its own rounding.

Run with Debian's python3-torch: /usr/bin/python3 scripts/make-mla-fixtures.py
"""
import json
import math
import os

import torch

OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'mla')

CONFIGS = {
    # DeepSeek-V2-Lite's layout: a plain q_proj, v_head_dim == qk_nope_head_dim.
    'lite': dict(batch=1, seq=6, config=dict(
        hidden_size=32, num_attention_heads=2, q_lora_rank=None, kv_lora_rank=16, qk_nope_head_dim=8,
        qk_rope_head_dim=4, v_head_dim=8, rope_theta=10000.0, rms_norm_eps=1e-6)),
    # DeepSeek-V2's layout: the query's low-rank projection; v_head_dim != qk_nope_head_dim; a large
    # rope_theta; batch 2; an rms_norm_eps the attention's norms do not use (HF gives them 1e-6).
    'qlora': dict(batch=2, seq=5, config=dict(
        hidden_size=48, num_attention_heads=4, q_lora_rank=12, kv_lora_rank=16, qk_nope_head_dim=8,
        qk_rope_head_dim=8, v_head_dim=12, rope_theta=1000000.0, rms_norm_eps=1e-3)),
    # No q_lora, batch 2, a rope dim of 6 (odd half) and v_head_dim != qk_nope_head_dim.
    'wide': dict(batch=2, seq=7, config=dict(
        hidden_size=64, num_attention_heads=3, q_lora_rank=None, kv_lora_rank=16, qk_nope_head_dim=6,
        qk_rope_head_dim=6, v_head_dim=10, rope_theta=50000.0, rms_norm_eps=1e-6)),
}


def rms_norm(x, weight, eps=1e-6):
    # DeepseekV2RMSNorm: variance in float32 in HF; here everything is float64.
    variance = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(variance + eps))


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, position_ids, unsqueeze_dim=1):
    cos = cos[position_ids].unsqueeze(unsqueeze_dim)
    sin = sin[position_ids].unsqueeze(unsqueeze_dim)
    b, h, s, d = q.shape
    q = q.view(b, h, s, d // 2, 2).transpose(4, 3).reshape(b, h, s, d)
    b, h, s, d = k.shape
    k = k.view(b, h, s, d // 2, 2).transpose(4, 3).reshape(b, h, s, d)
    q_embed = (q * cos) + (rotate_half(q) * sin)
    k_embed = (k * cos) + (rotate_half(k) * sin)
    return q_embed, k_embed


def rotary_cos_sin(dim, seq_len, base):
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    t = torch.arange(seq_len, dtype=torch.float64)
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def deepseek_v2_attention(c, w, hidden_states):
    """DeepseekV2Attention.forward without a cache (attention_mask: causal)."""
    bsz, q_len, _ = hidden_states.size()
    H, nope, rope, v_dim = c['num_attention_heads'], c['qk_nope_head_dim'], c['qk_rope_head_dim'], c['v_head_dim']
    q_head_dim = nope + rope
    linear = lambda x, name: x @ w[name].T
    if c['q_lora_rank'] is None:
        q = linear(hidden_states, 'q_proj.weight')
    else:
        q = linear(rms_norm(linear(hidden_states, 'q_a_proj.weight'), w['q_a_layernorm.weight']), 'q_b_proj.weight')
    q = q.view(bsz, q_len, H, q_head_dim).transpose(1, 2)
    q_nope, q_pe = torch.split(q, [nope, rope], dim=-1)

    compressed_kv = linear(hidden_states, 'kv_a_proj_with_mqa.weight')
    compressed_kv, k_pe = torch.split(compressed_kv, [c['kv_lora_rank'], rope], dim=-1)
    k_pe = k_pe.view(bsz, q_len, 1, rope).transpose(1, 2)
    kv = linear(rms_norm(compressed_kv, w['kv_a_layernorm.weight']), 'kv_b_proj.weight')
    kv = kv.view(bsz, q_len, H, nope + v_dim).transpose(1, 2)
    k_nope, value_states = torch.split(kv, [nope, v_dim], dim=-1)

    cos, sin = rotary_cos_sin(rope, q_len, c['rope_theta'])
    position_ids = torch.arange(q_len).unsqueeze(0).expand(bsz, q_len)
    q_pe, k_pe = apply_rotary_pos_emb(q_pe, k_pe, cos, sin, position_ids)

    query_states = torch.empty(bsz, H, q_len, q_head_dim, dtype=q.dtype)
    query_states[:, :, :, :nope] = q_nope
    query_states[:, :, :, nope:] = q_pe
    key_states = torch.empty(bsz, H, q_len, q_head_dim, dtype=q.dtype)
    key_states[:, :, :, :nope] = k_nope
    key_states[:, :, :, nope:] = k_pe

    softmax_scale = q_head_dim ** (-0.5)
    attn_weights = torch.matmul(query_states, key_states.transpose(2, 3)) * softmax_scale
    causal = torch.triu(torch.full((q_len, q_len), -math.inf, dtype=q.dtype), diagonal=1)
    attn_weights = torch.softmax(attn_weights + causal, dim=-1)
    attn_output = torch.matmul(attn_weights, value_states)
    attn_output = attn_output.transpose(1, 2).reshape(bsz, q_len, H * v_dim)
    return linear(attn_output, 'o_proj.weight')


def shapes(c):
    H, nope, rope, v_dim, hidden = c['num_attention_heads'], c['qk_nope_head_dim'], c['qk_rope_head_dim'], c['v_head_dim'], c['hidden_size']
    out = {}
    if c['q_lora_rank'] is None:
        out['q_proj.weight'] = [H * (nope + rope), hidden]
    else:
        out['q_a_proj.weight'] = [c['q_lora_rank'], hidden]
        out['q_a_layernorm.weight'] = [c['q_lora_rank']]
        out['q_b_proj.weight'] = [H * (nope + rope), c['q_lora_rank']]
    out['kv_a_proj_with_mqa.weight'] = [c['kv_lora_rank'] + rope, hidden]
    out['kv_a_layernorm.weight'] = [c['kv_lora_rank']]
    out['kv_b_proj.weight'] = [H * (nope + v_dim), c['kv_lora_rank']]
    out['o_proj.weight'] = [hidden, H * v_dim]
    return out


def floats(t):
    # 9 significant digits round-trip a float32 exactly.
    return [float('%.9g' % v) for v in t.reshape(-1).tolist()]


def main():
    os.makedirs(OUT, exist_ok=True)
    for i, (name, spec) in enumerate(CONFIGS.items()):
        gen = torch.Generator().manual_seed(1000 + i)
        c = spec['config']
        weights = {}
        for key, dims in shapes(c).items():
            if key.endswith('layernorm.weight'):
                t = 1 + 0.2 * torch.randn(dims, generator=gen)
            else:
                t = torch.randn(dims, generator=gen) / math.sqrt(dims[1])
            weights[key] = t.float().double()
        x = torch.randn(spec['batch'], spec['seq'], c['hidden_size'], generator=gen).float().double()
        y = deepseek_v2_attention(c, weights, x)
        fixture = {
            'about': 'DeepseekV2Attention (modeling_deepseek.py) in float64 on these float32 values; scripts/make-mla-fixtures.py',
            'config': c,
            'weights': {k: {'dims': list(t.shape), 'data': floats(t)} for k, t in weights.items()},
            'x': {'dims': list(x.shape), 'data': floats(x)},
            'y': {'dims': list(y.shape), 'data': floats(y)},
        }
        path = os.path.join(OUT, name + '.json')
        with open(path, 'w') as f:
            json.dump(fixture, f, separators=(',', ':'))
            f.write('\n')
        print(f'{path}: y dims {list(y.shape)}, max |y| {y.abs().max().item():.3f}')


if __name__ == '__main__':
    main()
