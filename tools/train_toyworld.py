#!/usr/bin/python3
"""Train cliplens' embedded default CLIP on the toy scene world (plain torch, open_clip layout).

  node --import tsx tools/make_toyworld_data.ts --out .cache/toyworld
  OPENBLAS_NUM_THREADS=1 /usr/bin/python3 tools/train_toyworld.py --data .cache/toyworld --out models/toyworld

Needs Debian's python3-torch (and libopenblas0-pthread: without it torch uses the reference BLAS,
about 10x slower). Deterministic from --seed on one CPU thread. The loss is CLIP's symmetric
contrastive loss with soft targets: a caption that leaves attributes out is a positive for every
image in the batch it is true of, not only for its own image.
"""
import argparse
import json
import math
import os
import struct
import sys
import time
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]
EOT = 49407

# ---------------------------------------------------------------- safetensors (numpy only)

_NP = {'F64': np.float64, 'F32': np.float32, 'F16': np.float16, 'I64': np.int64, 'I32': np.int32,
       'I16': np.int16, 'I8': np.int8, 'U8': np.uint8, 'BOOL': np.bool_}
_ST = {np.dtype(v): k for k, v in _NP.items()}


def load_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == '__metadata__':
            continue
        b, en = e['data_offsets']
        out[name] = np.frombuffer(data[b:en], dtype=_NP[e['dtype']]).reshape(e['shape'])
    return out


def save_safetensors(path, tensors, metadata=None):
    items = sorted(tensors.items(), key=lambda kv: -kv[1].dtype.itemsize)
    header, off = {}, 0
    if metadata:
        header['__metadata__'] = metadata
    for name, a in items:
        header[name] = {'dtype': _ST[a.dtype], 'shape': list(a.shape), 'data_offsets': [off, off + a.nbytes]}
        off += a.nbytes
    hb = json.dumps(header, separators=(',', ':')).encode()
    hb += b' ' * ((8 - len(hb) % 8) % 8)
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(hb)))
        f.write(hb)
        for _, a in items:
            f.write(np.ascontiguousarray(a).tobytes())
    os.replace(tmp, path)


# ---------------------------------------------------------------- model (open_clip layout and names)

class Attention(nn.Module):
    """nn.MultiheadAttention's packed parameters: in_proj_weight rows [q; k; v]."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d, d))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d))
        self.out_proj = nn.Linear(d, d)

    def forward(self, x, mask=None):  # x [B, N, d]
        B, N, d = x.shape
        h = self.heads
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).split(d, dim=-1)
        q = q.reshape(B, N, h, d // h).transpose(1, 2) * (d // h) ** -0.5
        k = k.reshape(B, N, h, d // h).transpose(1, 2)
        v = v.reshape(B, N, h, d // h).transpose(1, 2)
        a = q @ k.transpose(-1, -2)
        if mask is not None:
            a = a + mask
        o = (a.softmax(-1) @ v).transpose(1, 2).reshape(B, N, d)
        return self.out_proj(o)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d, heads, mlp_ratio=4.0):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.attn = Attention(d, heads)
        self.ln_2 = nn.LayerNorm(d)
        hidden = int(d * mlp_ratio)
        self.mlp = nn.Sequential(OrderedDict([('c_fc', nn.Linear(d, hidden)), ('gelu', nn.GELU()), ('c_proj', nn.Linear(hidden, d))]))

    def forward(self, x, mask=None):
        x = x + self.attn(self.ln_1(x), mask)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, d, layers, heads, mlp_ratio=4.0):
        super().__init__()
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(d, heads, mlp_ratio) for _ in range(layers)])

    def forward(self, x, mask=None):
        for b in self.resblocks:
            x = b(x, mask)
        return x


class VisionTransformer(nn.Module):
    def __init__(self, image_size, patch_size, width, layers, heads, mlp_ratio, embed_dim):
        super().__init__()
        scale = width ** -0.5
        grid = image_size // patch_size
        self.conv1 = nn.Conv2d(3, width, patch_size, patch_size, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads, mlp_ratio)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, embed_dim))

    def forward(self, x):  # x [B, 3, S, S] normalised
        x = self.conv1(x).flatten(2).transpose(1, 2)  # [B, grid^2, width], row-major patches
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding
        x = self.transformer(self.ln_pre(x))
        return self.ln_post(x[:, 0]) @ self.proj


def sincos_2d(grid, width):
    """[grid*grid, width]: sin/cos of the row index in the first half, of the column index in the second."""
    q = width // 4
    omega = 1.0 / (100.0 ** (torch.arange(q, dtype=torch.float64) / q))
    ys, xs = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64), indexing='ij')
    y, x = ys.reshape(-1, 1) * omega, xs.reshape(-1, 1) * omega
    return torch.cat([y.sin(), y.cos(), x.sin(), x.cos()], dim=1).float()


class CLIP(nn.Module):
    def __init__(self, cfg, pos_scale=0.25):
        super().__init__()
        v, t = cfg['vision_cfg'], cfg['text_cfg']
        self.visual = VisionTransformer(v['image_size'], v['patch_size'], v['width'], v['layers'],
                                        v['width'] // v['head_width'], v.get('mlp_ratio', 4.0), cfg['embed_dim'])
        self.context_length = t['context_length']
        self.transformer = Transformer(t['width'], t['layers'], t['heads'], t.get('mlp_ratio', 4.0))
        self.token_embedding = nn.Embedding(t['vocab_size'], t['width'])
        self.positional_embedding = nn.Parameter(torch.empty(t['context_length'], t['width']))
        self.ln_final = nn.LayerNorm(t['width'])
        self.text_projection = nn.Parameter(torch.empty(t['width'], cfg['embed_dim']))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        n = t['context_length']
        self.register_buffer('attn_mask', torch.full((n, n), float('-inf')).triu(1), persistent=False)
        self._init(t['width'], t['layers'], v['width'], v['layers'], pos_scale)

    def _init(self, tw, tl, vw, vl, pos_scale):
        # open_clip's initialisation (CLIP.init_parameters), applied to both towers.
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        for blocks, w, l in ((self.transformer.resblocks, tw, tl), (self.visual.transformer.resblocks, vw, vl)):
            proj_std = (w ** -0.5) * ((2 * l) ** -0.5)
            for b in blocks:
                nn.init.normal_(b.attn.in_proj_weight, std=w ** -0.5)
                nn.init.normal_(b.attn.out_proj.weight, std=proj_std)
                nn.init.zeros_(b.attn.out_proj.bias)
                nn.init.normal_(b.mlp.c_fc.weight, std=(2 * w) ** -0.5)
                nn.init.normal_(b.mlp.c_proj.weight, std=proj_std)
        nn.init.normal_(self.text_projection, std=tw ** -0.5)
        # Patch rows start as a scaled 2D sin-cos table (still learned): with open_clip's small random
        # init the model learned no position in our step budget; at scale 1 it lost the textures.
        grid = int(round((self.visual.positional_embedding.shape[0] - 1) ** 0.5))
        with torch.no_grad():
            self.visual.positional_embedding[1:] = pos_scale * sincos_2d(grid, vw)


    def encode_image(self, x):
        return self.visual(x)

    def encode_text(self, tokens):  # tokens [B, ctx] int64
        # Causal attention: positions after the last EOT never influence it, so run only up to there.
        n = int(tokens.argmax(-1).max()) + 1
        tk = tokens[:, :n]
        x = self.token_embedding(tk) + self.positional_embedding[:n]
        x = self.ln_final(self.transformer(x, self.attn_mask[:n, :n]))
        return x[torch.arange(x.shape[0]), tk.argmax(-1)] @ self.text_projection


# ---------------------------------------------------------------- data

class Data:
    def __init__(self, path, with_aug):
        t = load_safetensors(path)
        self.images = t['images']  # u8 [n, S, S, 3]
        self.labels = t['labels'].astype(np.int64)  # [n, F]
        self.tokens = t['tokens']  # [n, ctx]
        self.masks = t.get('masks')
        if with_aug:
            self.aug_tokens = t['aug_tokens']  # [n, K, ctx]
            self.aug_allowed = t['aug_allowed']  # [n, K, F]
        self.n = self.images.shape[0]


def to_pixels(u8, mean, std):
    x = torch.from_numpy(np.array(u8)).float().div_(255).permute(0, 3, 1, 2)
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


@torch.no_grad()
def zero_shot(model, data, prompts, families, mean, std, batch=250):
    """Per-family zero-shot accuracy: class embedding = mean of normalised prompt embeddings."""
    model.eval()
    feats = []
    for i in range(0, data.n, batch):
        feats.append(F.normalize(model.encode_image(to_pixels(data.images[i:i + batch], mean, std)), dim=-1))
    img = torch.cat(feats)
    acc = {}
    for j, fam in enumerate(families):
        tok = torch.from_numpy(prompts[f'{fam}.tokens'].astype(np.int64))
        cls = torch.from_numpy(prompts[f'{fam}.class'].astype(np.int64))
        txt = F.normalize(model.encode_text(tok), dim=-1)
        k = int(cls.max()) + 1
        W = F.normalize(torch.stack([txt[cls == c].mean(0) for c in range(k)]), dim=-1)
        pred = (img @ W.T).argmax(-1).numpy()
        acc[fam] = float((pred == data.labels[:, j]).mean())
    model.train()
    return acc


def soft_targets(labels, allowed):
    """M[i, j] = caption j is true of image i: every family's label is among the caption's allowed values."""
    bits = (allowed.unsqueeze(0) >> labels.unsqueeze(1)) & 1  # [B_img, B_txt, F]
    return bits.all(-1).float()


def fp16_rounded(model):
    m = CLIP(model.cfg)
    m.cfg = model.cfg
    m.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
    return m


# ---------------------------------------------------------------- fixture check

def check_fixture(ref_dir):
    """Load the shared tiny_a random CLIP and compare features with the reference implementation's."""
    cfg = json.load(open(os.path.join(ref_dir, 'tiny_a.json')))
    model = CLIP(cfg)
    w = load_safetensors(os.path.join(ref_dir, 'tiny_a.safetensors'))
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in w.items()}, strict=True), None
    inp = load_safetensors(os.path.join(ref_dir, 'inputs_tiny_a.safetensors'))
    out = load_safetensors(os.path.join(ref_dir, 'outputs_tiny_a.safetensors'))
    tok = load_safetensors(os.path.join(ref_dir, 'tokens.safetensors'))['tokens']
    with torch.no_grad():
        img = model.encode_image(torch.from_numpy(inp['pixel_values'].copy())).numpy()
        txt = model.encode_text(torch.from_numpy(tok.astype(np.int64))).numpy()
    di = np.abs(img - out['image_features']).max()
    dt = np.abs(txt - out['text_features']).max()
    print(f'fixture tiny_a: max |image_features diff| {di:.2e}, max |text_features diff| {dt:.2e}')
    return max(di, dt) < 1e-3


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', default='.cache/toyworld')
    ap.add_argument('--out', default='models/toyworld')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--steps', type=int, default=1500)
    ap.add_argument('--batch', type=int, default=128)
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--wd', type=float, default=0.1)
    ap.add_argument('--warmup', type=int, default=100)
    ap.add_argument('--full-caption-prob', type=float, default=0.1)
    ap.add_argument('--eval-every', type=int, default=250)
    ap.add_argument('--vision-width', type=int, default=128)
    ap.add_argument('--vision-layers', type=int, default=6)
    ap.add_argument('--patch', type=int, default=8)
    ap.add_argument('--text-width', type=int, default=128)
    ap.add_argument('--text-layers', type=int, default=4)
    ap.add_argument('--embed-dim', type=int, default=64)
    ap.add_argument('--pos-scale', type=float, default=0.25, help='scale of the sin-cos init of the vision positional embedding')
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--check-fixture', metavar='DIR', help='only check the model code against the reference fixture (test/fixtures/reference)')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    if a.check_fixture:
        sys.exit(0 if check_fixture(a.check_fixture) else 1)

    for f in ('train.safetensors', 'balanced.safetensors', 'prompts.safetensors', 'prompts.json'):
        if not os.path.exists(os.path.join(a.data, f)):
            sys.exit(f'error: {os.path.join(a.data, f)} is missing; run tools/make_toyworld_data.ts --out {a.data} first')
    meta = json.load(open(os.path.join(a.data, 'balanced.json')))
    families, size, ctx = meta['families'], meta['size'], meta['context_length']
    cfg = {
        'embed_dim': a.embed_dim, 'quick_gelu': False,
        'vision_cfg': {'image_size': size, 'layers': a.vision_layers, 'width': a.vision_width, 'head_width': 32, 'patch_size': a.patch, 'mlp_ratio': 4.0},
        'text_cfg': {'context_length': ctx, 'vocab_size': 49408, 'width': a.text_width, 'heads': a.text_width // 32, 'layers': a.text_layers},
    }
    mean, std = OPENAI_MEAN, OPENAI_STD

    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    model = CLIP(cfg, a.pos_scale)
    model.cfg = cfg
    train = Data(os.path.join(a.data, 'train.safetensors'), True)
    bal = Data(os.path.join(a.data, 'balanced.safetensors'), False)
    prompts = load_safetensors(os.path.join(a.data, 'prompts.safetensors'))
    n_params = sum(p.numel() for p in model.parameters())
    print(f'model: {n_params / 1e6:.2f} M parameters; train {train.n} images; {a.steps} steps x {a.batch}', flush=True)

    # No decay on gains, biases, embeddings (unused token rows must keep their init), logit_scale.
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and 'embedding' not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and 'embedding' not in n)]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': a.wd}, {'params': no_decay, 'weight_decay': 0.0}], lr=a.lr, betas=(0.9, 0.98), eps=1e-6)

    K = train.aug_tokens.shape[1]
    F_ = len(families)
    full_allowed = (1 << train.labels).astype(np.int32)  # full caption names every family exactly
    t0 = time.time()
    order = rng.permutation(train.n)
    pos = 0
    log = []
    for step in range(a.steps):
        lr = a.lr * (step + 1) / a.warmup if step < a.warmup else 0.5 * a.lr * (1 + math.cos(math.pi * (step - a.warmup) / max(1, a.steps - a.warmup)))
        for g in opt.param_groups:
            g['lr'] = lr
        if pos + a.batch > train.n:
            order, pos = rng.permutation(train.n), 0
        idx = np.sort(order[pos:pos + a.batch])
        pos += a.batch
        which = rng.integers(0, K, size=a.batch)
        use_full = rng.random(a.batch) < a.full_caption_prob
        tok = np.where(use_full[:, None], train.tokens[idx], train.aug_tokens[idx, which])
        allowed = np.where(use_full[:, None], full_allowed[idx], train.aug_allowed[idx, which])

        x = to_pixels(train.images[idx], mean, std)
        img = F.normalize(model.encode_image(x), dim=-1)
        txt = F.normalize(model.encode_text(torch.from_numpy(tok.astype(np.int64))), dim=-1)
        logits = model.logit_scale.exp() * img @ txt.T
        M = soft_targets(torch.from_numpy(train.labels[idx]), torch.from_numpy(allowed.astype(np.int64)))
        loss = 0.5 * (-(M / M.sum(1, keepdim=True) * logits.log_softmax(1)).sum(1).mean()
                      - (M / M.sum(0, keepdim=True) * logits.log_softmax(0)).sum(0).mean())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if step % 25 == 0 or step == a.steps - 1:
            el = time.time() - t0
            print(f'step {step:5d}  loss {loss.item():.4f}  lr {lr:.2e}  scale {model.logit_scale.exp().item():.1f}  {el / 60:.1f} min', flush=True)
        if (step + 1) % a.eval_every == 0 and step + 1 < a.steps:
            acc = zero_shot(model, bal, prompts, families, mean, std)
            log.append({'step': step + 1, 'minutes': round((time.time() - t0) / 60, 2), 'acc': acc})
            print('zero-shot (balanced):', json.dumps({k: round(v, 4) for k, v in acc.items()}), flush=True)

    train_min = (time.time() - t0) / 60
    acc32 = zero_shot(model, bal, prompts, families, mean, std)
    half = fp16_rounded(model)
    acc16 = zero_shot(half, bal, prompts, families, mean, std)
    print('final zero-shot fp32 (balanced):', json.dumps(acc32))
    print('final zero-shot fp16 weights (balanced):', json.dumps(acc16))
    extra = {}
    for split in ('val', 'correlated'):
        p = os.path.join(a.data, f'{split}.safetensors')
        if os.path.exists(p):
            extra[split] = zero_shot(half, Data(p, False), prompts, families, mean, std)
            print(f'zero-shot fp16 weights ({split}):', json.dumps(extra[split]))

    os.makedirs(a.out, exist_ok=True)
    sd = {k: v.detach().numpy().astype(np.float16) for k, v in model.state_dict().items()}
    save_safetensors(os.path.join(a.out, 'open_clip_model.safetensors'), sd, {
        'format': 'pt', 'trained_by': 'tools/train_toyworld.py', 'seed': str(a.seed), 'steps': str(a.steps),
    })
    with open(os.path.join(a.out, 'open_clip_config.json'), 'w') as f:
        json.dump({'model_cfg': cfg, 'preprocess_cfg': {'mean': mean, 'std': std, 'interpolation': 'bicubic', 'resize_mode': 'shortest'}}, f, indent=2)
        f.write('\n')
    report = {
        'seed': a.seed, 'pos_scale': a.pos_scale, 'steps': a.steps, 'batch': a.batch, 'lr': a.lr, 'wd': a.wd, 'warmup': a.warmup,
        'train_images': train.n, 'captions_per_image': K + 1, 'train_minutes': round(train_min, 2), 'threads': a.threads,
        'parameters': n_params, 'zero_shot_balanced_fp32': acc32, 'zero_shot_balanced_fp16': acc16,
        'zero_shot_other_fp16': extra, 'history': log, 'torch': torch.__version__,
    }
    with open(os.path.join(a.out, 'training_report.json'), 'w') as f:
        json.dump(report, f, indent=2)
        f.write('\n')
    print(f'saved {a.out} ({os.path.getsize(os.path.join(a.out, "open_clip_model.safetensors")) / 1e6:.1f} MB); training {train_min:.1f} min')


if __name__ == '__main__':
    main()
