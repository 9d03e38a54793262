#!/usr/bin/env python3
"""Run the reference's replace_with_iterative_removal (clip_text_span) on data written by
bench/textspan.ts, and time it.

    python3 tools/textspan_reference.py CHECKOUT DIR n d m k r

CHECKOUT is a clone of github.com/yossigandelsman/clip_text_span (not part of this repository);
DIR holds C.f32 [n, d] and T.f32 [m, d] (raw little-endian float32); the picks (text indices, in
order) and the seconds the call took go to DIR/out.json. Needs numpy and torch (Debian's
python3-numpy, python3-torch).

The function is taken from the checkout's compute_complete_text_set.py as written (its source,
found with `ast`, compiled unchanged) rather than by importing that script, whose other imports
(open_clip's tokenizer: ftfy, regex; torchvision's ImageNet) are not installable here and are not
used by the function. It uses einops for one `repeat` of the mean; where einops is not installed,
an equivalent stand-in for that one pattern is given to it.
"""
import ast
import json
import os
import sys
import time
import types

import numpy as np
import torch


def einops_stand_in():
    mod = types.ModuleType("einops")

    def repeat(x, pattern, **sizes):
        if pattern.replace(" ", "") != "AB->(CA)B":
            raise NotImplementedError(f"einops stand-in: only 'A B -> (C A) B', got {pattern!r}")
        return x.repeat(sizes["C"], 1)

    mod.repeat = repeat
    return mod


def main():
    checkout, folder = sys.argv[1], sys.argv[2]
    n, d, m, k, r = (int(v) for v in sys.argv[3:8])
    try:
        import einops
    except ImportError:
        einops = einops_stand_in()
    path = os.path.join(checkout, "compute_complete_text_set.py")
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    fn = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "replace_with_iterative_removal")
    namespace = {"np": np, "torch": torch, "einops": einops}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), path, "exec"), namespace)
    replace_with_iterative_removal = namespace["replace_with_iterative_removal"]

    # all cores, as the reference would use them (this torch build starts with one OpenMP thread)
    torch.set_num_threads(os.cpu_count() or 1)
    C = np.fromfile(os.path.join(folder, "C.f32"), dtype="<f4").reshape(n, d)
    T = np.fromfile(os.path.join(folder, "T.f32"), dtype="<f4").reshape(m, d)
    texts = list(range(m))
    t0 = time.perf_counter()
    _, picks = replace_with_iterative_removal(C, T, texts, k, r, "cpu")
    seconds = time.perf_counter() - t0
    with open(os.path.join(folder, "out.json"), "w") as f:
        json.dump({"seconds": seconds, "picks": [int(p) for p in picks], "threads": torch.get_num_threads()}, f)


if __name__ == "__main__":
    main()
