"""The reference's speed, memory and numbers on a hub-layout checkpoint, for `npm run bench -- scale`.

Runs the authors' code (clip_text_span: its open_clip fork in utils/ and prs_hook.py, unmodified,
imported from a checkout) on CPU: builds the model from the repo's open_clip_config.json, loads
open_clip_model.safetensors, then times plain encode_image and the per-head decomposition
(attn_method="head_no_spatial" + hook_prs_logger(spatial=False), as compute_prs.py without the
spatial axis) on the pixels the bench gives, and writes their outputs for comparison.

  CLIP_TEXT_SPAN=/path/to/clip_text_span /usr/bin/python3 tools/reference_scale.py REPO_DIR PIXELS.safetensors OUT.safetensors THREADS
Prints one JSON line: load_s, encode_ips, heads_ips, peak_rss_mb.
"""
import json
import os
import resource
import sys
import tempfile
import time

import numpy as np

from safetensors_np import read_safetensors, write_safetensors  # tools/safetensors_np.py
import torch


def import_reference(root):
    """clip_text_span imports einops (unused on this path) and ftfy (text only): stand-ins where Debian lacks them."""
    sys.path.insert(0, root)
    shims = tempfile.mkdtemp(prefix="cliplens-ref-shims-")
    for mod, body in (("einops", ""), ("ftfy", "def fix_text(t):\n    return t\n")):
        try:
            __import__(mod)
        except ImportError:
            with open(os.path.join(shims, mod + ".py"), "w") as f:
                f.write(body)
    sys.path.append(shims)
    from utils.factory import create_model  # noqa: E402
    from prs_hook import hook_prs_logger  # noqa: E402
    return create_model, hook_prs_logger


def main():
    repo_dir, pixels_path, out_path, threads = sys.argv[1:5]
    torch.set_num_threads(int(threads))
    create_model, hook_prs_logger = import_reference(os.environ["CLIP_TEXT_SPAN"])
    t0 = time.perf_counter()
    cfg = json.load(open(os.path.join(repo_dir, "open_clip_config.json")))
    import utils.factory as factory  # the fork looks model configs up by name
    factory._MODEL_CONFIGS["cliplens-bench"] = cfg["model_cfg"]
    model = create_model("cliplens-bench", pretrained=None)
    sd = {k: torch.from_numpy(v.copy()) for k, v in read_safetensors(os.path.join(repo_dir, "open_clip_model.safetensors")).items()}
    model.load_state_dict(sd, strict=True)
    del sd
    model.eval()
    load_s = time.perf_counter() - t0
    px = torch.from_numpy(read_safetensors(pixels_path)["pixel_values"].copy())
    B = px.shape[0]
    with torch.no_grad():
        model.encode_image(px[:1], attn_method="direct", normalize=False)  # warm-up
        t = time.perf_counter()
        z = model.encode_image(px, attn_method="direct", normalize=False)
        encode_s = time.perf_counter() - t
        prs = hook_prs_logger(model, "cpu", spatial=False)
        t = time.perf_counter()
        prs.reinit()
        rep = model.encode_image(px, attn_method="head_no_spatial", normalize=False)
        attn, mlp = prs.finalize(rep)
        heads_s = time.perf_counter() - t
    write_safetensors(out_path, {"image_features": z.numpy(), "attn": attn.numpy(), "mlp": mlp.numpy()})
    print(json.dumps({"load_s": load_s, "encode_ips": B / encode_s, "heads_ips": B / heads_s, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
