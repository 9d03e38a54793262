#!/usr/bin/env python3
"""Time the reference's second-order neuron effects (for bench/neurons.ts).

Runs, unmodified, the computation of compute_second_order_neuron_prs.py from a checkout of
github.com/yossigandelsman/second_order_lens (pass it with --repo; it is not part of cliplens):
SecondOrderPrsNeurons hooked into the reference's own CLIP, encode_image(attn_method="head"), then
apply_attention_head_and_project_layer_neurons for every later layer and head, summed. The model is
the reference's ViT-B-32 config with the random vision weights cliplens wrote (open_clip names), and
the pixels are cliplens's, so both sides compute the same tensor.

Prints one JSON line: seconds per image, peak RSS; writes the effects of the first images to --out
(safetensors, `second_order` [images, neurons, d]) for the comparison.

Needs torch, torchvision, numpy and regex (Debian: python3-torch, python3-torchvision,
python3-numpy, python3-regex). Only the vision path runs; modules the reference imports without
using them on that path (ftfy, einops) are replaced by empty stand-ins when not installed.
"""
import argparse
import json
import resource
import sys
import time
import types

import numpy as np

from safetensors_np import read_safetensors, write_safetensors  # tools/safetensors_np.py


def stub_missing(names):
    for name in names:
        try:
            __import__(name)
        except ImportError:
            sys.modules[name] = types.ModuleType(name)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repo", required=True, help="checkout of second_order_lens")
    p.add_argument("--checkpoint", required=True, help="open_clip-layout safetensors (vision tower)")
    p.add_argument("--pixels", required=True, help="safetensors with pixel_values [B,3,224,224]")
    p.add_argument("--model", default="ViT-B-32")
    p.add_argument("--layer", type=int, default=9)
    p.add_argument("--images", type=int, default=2)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--out", required=True)
    a = p.parse_args()

    stub_missing(["ftfy", "einops"])  # imported by the reference, unused on the vision path
    sys.path.insert(0, a.repo)
    import torch
    from utils.factory import create_model_and_transforms
    from prs_second_order_neurons_hook import hook_prs_logger

    if a.threads:
        torch.set_num_threads(a.threads)
    model, _, _ = create_model_and_transforms(a.model, pretrained=None, force_quick_gelu=True)
    state = {k: torch.from_numpy(v.copy()) for k, v in read_safetensors(a.checkpoint).items() if k.startswith("visual.")}
    missing = [k for k in model.state_dict() if k.startswith("visual.") and k not in state]
    if missing:
        raise SystemExit(f"checkpoint lacks {missing[:3]}")
    model.load_state_dict(state, strict=False)
    model.eval()
    pixels = torch.from_numpy(read_safetensors(a.pixels)["pixel_values"][: a.images].copy())

    prs = hook_prs_logger(model, a.layer, "cpu")
    num_heads = model.visual.transformer.resblocks[0].attn.num_heads
    layers = len(model.visual.transformer.resblocks)
    results = []
    seconds = []
    for i in range(pixels.shape[0]):
        t0 = time.perf_counter()
        with torch.no_grad():
            # compute_second_order_neuron_prs.py:88-105, batch size 1
            prs.reinit()
            representation = model.encode_image(pixels[i : i + 1], attn_method="head", normalize=False)
            prs.finalize()
            current = []
            for layer in range(a.layer + 1, layers):
                for head in range(num_heads):
                    current.append(prs.apply_attention_head_and_project_layer_neurons(layer, head, representation))
            results.append(np.stack(current, axis=0).sum(axis=0))
        seconds.append(time.perf_counter() - t0)
    write_safetensors(a.out, {"second_order": np.concatenate(results, axis=0)})
    print(json.dumps({
        "images": len(seconds),
        "secondsPerImage": sum(seconds) / len(seconds),
        "peakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
