#!/usr/bin/env python3
"""open_clip's eval transform with PIL + torchvision, as the reference runs it, over a folder.

    python3 tools/pil_preprocess.py DIR OUT.safetensors [--size 224] [--limit N]

Resize(size, BICUBIC) -> CenterCrop(size) -> convert('RGB') -> ToTensor -> Normalize(OpenAI mean/std),
one image after another in this process (what a DataLoader worker does). Writes pixel_values
[B, 3, S, S] float32 in sorted file-name order and prints one JSON line with the timings:
seconds (wall and CPU) for the whole loop, and wall seconds for decoding (Image.open + load) alone. Debian's python3-pil,
python3-torch and python3-torchvision (PIL 9.4, torch 1.13, torchvision 0.14) are what the
reference used.
"""
import json
import os
import struct
import sys
import time

from PIL import Image
import torch
from torchvision import transforms

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def write_safetensors(path, name, tensor):
    data = tensor.contiguous().numpy().tobytes()
    header = {name: {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [0, len(data)]}}
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        f.write(data)


def main():
    args = sys.argv[1:]
    size = int(args[args.index("--size") + 1]) if "--size" in args else 224
    limit = int(args[args.index("--limit") + 1]) if "--limit" in args else None
    folder, out = args[0], args[1]
    exts = (".jpg", ".jpeg", ".png")
    files = sorted(f for f in os.listdir(folder) if f.lower().endswith(exts))[:limit]
    paths = [os.path.join(folder, f) for f in files]
    torch.set_num_threads(1)
    transform = transforms.Compose([
        transforms.Resize(size, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(size),
        lambda im: im.convert("RGB"),
        transforms.ToTensor(),
        transforms.Normalize(mean=OPENAI_MEAN, std=OPENAI_STD),
    ])
    t0 = time.perf_counter()
    for p in paths:
        with Image.open(p) as im:
            im.load()
    decode_s = time.perf_counter() - t0
    out_t = torch.empty(len(paths), 3, size, size)
    t0 = time.perf_counter()
    c0 = time.process_time()
    for i, p in enumerate(paths):
        with Image.open(p) as im:
            out_t[i] = transform(im)
    total_s = time.perf_counter() - t0
    cpu_s = time.process_time() - c0
    write_safetensors(out, "pixel_values", out_t)
    print(json.dumps({"images": len(paths), "seconds": total_s, "cpu_seconds": cpu_s, "decode_seconds": decode_s,
                      "pil": Image.__version__, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
