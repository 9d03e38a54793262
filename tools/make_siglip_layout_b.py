#!/usr/bin/env python3
"""A second random tiny SigLIP ("layout b") with sizes unlike the reference fixture's, and its
outputs from a hand-written float64 forward pass (numpy only), for test/siglip.test.ts.

    python3 tools/make_siglip_layout_b.py test/fixtures/siglip/tiny_siglip_a/spiece.model test/fixtures/siglip_b

Layout b: 36 px images, patch 6 (6x6 = 36 tokens, no CLS), width 40, 5 heads (head width 8),
2 encoder layers, MLP 72 (ratio 1.8), tanh GELU; text: vocab 1000 (the fixture's spiece.model),
width 40, 5 heads, 3 layers, 12 positions. config.json leaves out the fields transformers
defaults (layer_norm_eps, hidden_act, num_channels, projection_size, ...), so loading exercises
SiglipVisionConfig / SiglipTextConfig's defaults. The forward pass follows transformers'
SiglipModel as the reference's hooked copy runs it: pre-LN encoder layers, softmax(q k^T / sqrt(d_h)),
post_layernorm, the MAP pooling head (probe query over all tokens, out_proj, LayerNorm + MLP
residual), text pooled at the LAST position without an attention mask. Deterministic: same bytes
on every run.
"""
import json
import os
import shutil
import struct
import sys

import numpy as np

SEED = 20251127
IMAGE, PATCH, WIDTH, HEADS, LAYERS, INTER = 36, 6, 40, 5, 2, 72
T_WIDTH, T_HEADS, T_LAYERS, T_INTER, POSITIONS, VOCAB = 40, 5, 3, 72, 12, 1000
EPS = 1e-6


def write_safetensors(path, tensors):
    """safetensors: u64 LE header length, JSON header (padded with spaces to 8 bytes), raw LE data."""
    codes = {np.dtype('float32'): 'F32', np.dtype('float64'): 'F64', np.dtype('int64'): 'I64', np.dtype('int32'): 'I32'}
    header, blobs, off = {}, [], 0
    for name, arr in tensors.items():
        a = np.ascontiguousarray(arr)
        b = a.astype(a.dtype.newbyteorder('<')).tobytes()
        header[name] = {'dtype': codes[a.dtype], 'shape': list(a.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def random_weights(rng):
    w = {}

    def mat(name, out_f, in_f, gain=1.0):
        w[name] = rng.standard_normal((out_f, in_f)) * gain / np.sqrt(in_f)

    def vec(name, n, std=0.05, mean=0.0):
        w[name] = mean + std * rng.standard_normal(n)

    def layer(p, d, inter):
        for ln in ('layer_norm1', 'layer_norm2'):
            vec(f'{p}.{ln}.weight', d, 0.1, 1.0)
            vec(f'{p}.{ln}.bias', d)
        for proj in ('q_proj', 'k_proj', 'v_proj'):
            mat(f'{p}.self_attn.{proj}.weight', d, d, 1.5)
            vec(f'{p}.self_attn.{proj}.bias', d)
        mat(f'{p}.self_attn.out_proj.weight', d, d)
        vec(f'{p}.self_attn.out_proj.bias', d)
        mat(f'{p}.mlp.fc1.weight', inter, d)
        vec(f'{p}.mlp.fc1.bias', inter)
        mat(f'{p}.mlp.fc2.weight', d, inter)
        vec(f'{p}.mlp.fc2.bias', d)

    n = (IMAGE // PATCH) ** 2
    w['logit_scale'] = np.array([np.log(10.0) + 0.1 * rng.standard_normal()])
    w['logit_bias'] = np.array([-10.0 + 0.1 * rng.standard_normal()])
    w['text_model.embeddings.token_embedding.weight'] = 0.5 * rng.standard_normal((VOCAB, T_WIDTH))
    w['text_model.embeddings.position_embedding.weight'] = 0.5 * rng.standard_normal((POSITIONS, T_WIDTH))
    for l in range(T_LAYERS):
        layer(f'text_model.encoder.layers.{l}', T_WIDTH, T_INTER)
    vec('text_model.final_layer_norm.weight', T_WIDTH, 0.1, 1.0)
    vec('text_model.final_layer_norm.bias', T_WIDTH)
    mat('text_model.head.weight', WIDTH, T_WIDTH)
    vec('text_model.head.bias', WIDTH)
    w['vision_model.embeddings.patch_embedding.weight'] = rng.standard_normal((WIDTH, 3, PATCH, PATCH)) / np.sqrt(3 * PATCH * PATCH)
    vec('vision_model.embeddings.patch_embedding.bias', WIDTH)
    w['vision_model.embeddings.position_embedding.weight'] = 0.5 * rng.standard_normal((n, WIDTH))
    for l in range(LAYERS):
        layer(f'vision_model.encoder.layers.{l}', WIDTH, INTER)
    vec('vision_model.post_layernorm.weight', WIDTH, 0.1, 1.0)
    vec('vision_model.post_layernorm.bias', WIDTH)
    w['vision_model.head.probe'] = 2.0 * rng.standard_normal((1, 1, WIDTH))
    mat('vision_model.head.attention.in_proj_weight', 3 * WIDTH, WIDTH, 1.5)
    vec('vision_model.head.attention.in_proj_bias', 3 * WIDTH)
    mat('vision_model.head.attention.out_proj.weight', WIDTH, WIDTH)
    vec('vision_model.head.attention.out_proj.bias', WIDTH)
    vec('vision_model.head.layernorm.weight', WIDTH, 0.1, 1.0)
    vec('vision_model.head.layernorm.bias', WIDTH)
    mat('vision_model.head.mlp.fc1.weight', INTER, WIDTH)
    vec('vision_model.head.mlp.fc1.bias', INTER)
    mat('vision_model.head.mlp.fc2.weight', WIDTH, INTER)
    vec('vision_model.head.mlp.fc2.bias', WIDTH)
    # Stored as float32; the forward pass reads the float32 values in float64.
    return {k: v.astype(np.float32) for k, v in w.items()}


def layer_norm(x, g, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + EPS) * g + b


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def encoder_layer(w, p, x, heads):
    f = lambda n: w[n].astype(np.float64)
    lin = lambda y, n: y @ f(f'{n}.weight').T + f(f'{n}.bias')
    B, N, D = x.shape
    dh = D // heads
    h = layer_norm(x, f(f'{p}.layer_norm1.weight'), f(f'{p}.layer_norm1.bias'))
    split = lambda y: y.reshape(B, N, heads, dh).transpose(0, 2, 1, 3)
    q, k, v = (split(lin(h, f'{p}.self_attn.{n}')) for n in ('q_proj', 'k_proj', 'v_proj'))
    a = softmax(q @ k.transpose(0, 1, 3, 2) / np.sqrt(dh)) @ v
    x = x + lin(a.transpose(0, 2, 1, 3).reshape(B, N, D), f'{p}.self_attn.out_proj')
    h = layer_norm(x, f(f'{p}.layer_norm2.weight'), f(f'{p}.layer_norm2.bias'))
    return x + lin(gelu_tanh(lin(h, f'{p}.mlp.fc1')), f'{p}.mlp.fc2')


def vision(w, px):
    f = lambda n: w[n].astype(np.float64)
    B = px.shape[0]
    g = IMAGE // PATCH
    # Conv2d(kernel = stride = patch) as a matmul over flattened patches, row-major over the grid.
    patches = px.reshape(B, 3, g, PATCH, g, PATCH).transpose(0, 2, 4, 1, 3, 5).reshape(B, g * g, 3 * PATCH * PATCH)
    x = patches @ f('vision_model.embeddings.patch_embedding.weight').reshape(WIDTH, -1).T + f('vision_model.embeddings.patch_embedding.bias')
    x = x + f('vision_model.embeddings.position_embedding.weight')
    for l in range(LAYERS):
        x = encoder_layer(w, f'vision_model.encoder.layers.{l}', x, HEADS)
    xh = layer_norm(x, f('vision_model.post_layernorm.weight'), f('vision_model.post_layernorm.bias'))
    D, dh = WIDTH, WIDTH // HEADS
    W, bias = f('vision_model.head.attention.in_proj_weight'), f('vision_model.head.attention.in_proj_bias')
    q = f('vision_model.head.probe').reshape(1, D) @ W[:D].T + bias[:D]            # [1, D]
    k = xh @ W[D:2 * D].T + bias[D:2 * D]                                           # [B, N, D]
    v = xh @ W[2 * D:].T + bias[2 * D:]
    qh = q.reshape(HEADS, dh)
    kh = k.reshape(B, -1, HEADS, dh)
    vh = v.reshape(B, -1, HEADS, dh)
    probs = softmax(np.einsum('hc,bmhc->bhm', qh, kh) / np.sqrt(dh))               # [B, H, N]
    Wo = f('vision_model.head.attention.out_proj.weight').reshape(D, HEADS, dh)     # [d, H, d_h]
    spatial = np.einsum('bhm,bmhc,dhc->bmhd', probs, vh, Wo)                        # [B, N, H, d], no bias
    a = spatial.sum(axis=(1, 2)) + f('vision_model.head.attention.out_proj.bias')
    h = layer_norm(a, f('vision_model.head.layernorm.weight'), f('vision_model.head.layernorm.bias'))
    mlp = gelu_tanh(h @ f('vision_model.head.mlp.fc1.weight').T + f('vision_model.head.mlp.fc1.bias')) @ f('vision_model.head.mlp.fc2.weight').T + f('vision_model.head.mlp.fc2.bias')
    return a + mlp, spatial, spatial.sum(axis=1), mlp, probs, x


def text(w, ids):
    f = lambda n: w[n].astype(np.float64)
    x = f('text_model.embeddings.token_embedding.weight')[ids] + f('text_model.embeddings.position_embedding.weight')[: ids.shape[1]]
    for l in range(T_LAYERS):
        x = encoder_layer(w, f'text_model.encoder.layers.{l}', x, T_HEADS)
    x = layer_norm(x, f('text_model.final_layer_norm.weight'), f('text_model.final_layer_norm.bias'))
    return x[:, -1] @ f('text_model.head.weight').T + f('text_model.head.bias')


def main():
    spiece, out = sys.argv[1], sys.argv[2]
    model_dir = os.path.join(out, 'tiny_siglip_b')
    os.makedirs(model_dir, exist_ok=True)
    rng = np.random.default_rng(SEED)
    w = random_weights(rng)
    write_safetensors(os.path.join(model_dir, 'model.safetensors'), w)
    config = {
        'architectures': ['SiglipModel'],
        'model_type': 'siglip',
        'text_config': {'hidden_size': T_WIDTH, 'intermediate_size': T_INTER, 'num_attention_heads': T_HEADS, 'num_hidden_layers': T_LAYERS, 'max_position_embeddings': POSITIONS, 'vocab_size': VOCAB},
        'vision_config': {'hidden_size': WIDTH, 'image_size': IMAGE, 'intermediate_size': INTER, 'num_attention_heads': HEADS, 'num_hidden_layers': LAYERS, 'patch_size': PATCH},
    }
    with open(os.path.join(model_dir, 'config.json'), 'w') as fh:
        json.dump(config, fh, indent=2, sort_keys=True)
    with open(os.path.join(model_dir, 'preprocessor_config.json'), 'w') as fh:
        json.dump({'do_normalize': True, 'do_rescale': True, 'do_resize': True, 'image_mean': [0.5] * 3, 'image_std': [0.5] * 3, 'image_processor_type': 'SiglipImageProcessor', 'resample': 3, 'rescale_factor': 1 / 255, 'size': {'height': IMAGE, 'width': IMAGE}}, fh, indent=2, sort_keys=True)
    with open(os.path.join(model_dir, 'tokenizer_config.json'), 'w') as fh:
        json.dump({'do_lower_case': True, 'eos_token': '</s>', 'model_input_names': ['input_ids'], 'model_max_length': POSITIONS, 'pad_token': '</s>', 'tokenizer_class': 'SiglipTokenizer', 'unk_token': '<unk>'}, fh, indent=2, sort_keys=True)
    shutil.copyfile(spiece, os.path.join(model_dir, 'spiece.model'))

    px = rng.standard_normal((3, 3, IMAGE, IMAGE)).astype(np.float32)
    ids = rng.integers(3, VOCAB, size=(4, POSITIONS)).astype(np.int64)
    ids[1, 5:] = 1  # </s> padding
    ids[2, 0] = 0
    image_embeds, spatial, attn, mlp, probs, _ = vision(w, px.astype(np.float64))
    write_safetensors(os.path.join(out, 'inputs_tiny_siglip_b.safetensors'), {'pixel_values': px, 'input_ids': ids})
    write_safetensors(os.path.join(out, 'outputs_tiny_siglip_b_f64.safetensors'), {
        'image_embeds': image_embeds, 'attention_records_spatial': spatial, 'attention_records': attn,
        'mlp_records': mlp, 'head_attn_probs': probs, 'text_embeds': text(w, ids),
    })


if __name__ == '__main__':
    main()
