#!/usr/bin/env python3
"""Run the authors' protocol scripts on the stored terms of a cliplens protocol fixture.

Usage: /usr/bin/python3 tools/protocols/reference_protocols.py REF_DIR FIXTURE.safetensors SPEC.json OUT.json

REF_DIR is a checkout of yossigandelsman/clip_text_span (its code is imported from there, not
copied). The fixture holds a decomposition (attn, cls_attn, mlp), labels, groups, a zero-shot
classifier and a text pool, written by tools/protocols/make_fixtures.ts. For each run in SPEC this
writes those arrays as the .npy files the scripts read, calls the script's main() and records
what it prints or writes:

  compute_ablations.py          main() as is; its printed accuracies.
  compute_complete_text_set.py  main() as is, except that `accuracy` receives the fixture's labels
                                (the script builds ImageNet's i // 50); its output file: the texts of
                                every head and the accuracy.
  compute_use_specific_heads.py main() with its per-model head lists replaced by the run's heads (the
                                first if/elif statement of main, rewritten through `ast`); its printed
                                full_accuracy dicts, plus the accuracy of every (label, group) cell
                                computed with the reference's `accuracy` on the logits main() passes
                                to full_accuracy (which itself covers labels and groups 0 and 1 only).

einops is not packaged for Debian: a stand-in implements the two `repeat` patterns the scripts use.
The `utils` package is entered without its __init__.py (which imports the model factory), so only
utils/misc.py (`accuracy`) is loaded from it.
"""

import argparse
import ast
import contextlib
import importlib
import inspect
import io
import json
import os
import re
import struct
import sys
import tempfile
import types

import numpy as np
import torch


def read_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    dtypes = {'F32': np.float32, 'F16': np.float16, 'I32': np.int32, 'I64': np.int64}
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        a, b = info['data_offsets']
        out[name] = np.frombuffer(data[a:b], dtype=dtypes[info['dtype']]).reshape(info['shape']).astype(
            np.float32 if info['dtype'] in ('F32', 'F16') else np.int64)
    return out, header.get('__metadata__', {})


def einops_stand_in():
    m = types.ModuleType('einops')

    def repeat(x, pattern, **sizes):
        if pattern == 'A B -> (C A) B':
            return x.repeat(sizes['C'], 1) if torch.is_tensor(x) else np.tile(x, (sizes['C'], 1))
        if pattern == 'l d -> b l d':
            return np.broadcast_to(np.asarray(x)[None], (sizes['b'],) + np.asarray(x).shape).copy()
        raise NotImplementedError(pattern)

    m.repeat = repeat
    return m


def save(dir_, name, arr):
    np.save(os.path.join(dir_, name), arr)


def run_quiet(fn, *args):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        fn(*args)
    return out.getvalue()


def main():
    p = argparse.ArgumentParser()
    p.add_argument('ref_dir')
    p.add_argument('fixture')
    p.add_argument('spec')
    p.add_argument('out')
    a = p.parse_args()
    sys.modules['einops'] = einops_stand_in()
    sys.path.insert(0, os.path.abspath(a.ref_dir))
    # The scripts need utils.misc only; utils/__init__.py would also import the model factory
    # (open_clip, ftfy, …), so the package is entered without running it.
    pkg = types.ModuleType('utils')
    pkg.__path__ = [os.path.join(os.path.abspath(a.ref_dir), 'utils')]
    sys.modules['utils'] = pkg
    misc = importlib.import_module('utils.misc')
    ablations = importlib.import_module('compute_ablations')
    complete = importlib.import_module('compute_complete_text_set')
    specific = importlib.import_module('compute_use_specific_heads')

    t, meta = read_safetensors(a.fixture)
    spec = json.load(open(a.spec))
    texts = json.loads(meta['pool'])
    model, ds = 'M', 'fixture'
    tmp = tempfile.mkdtemp()
    save(tmp, f'{ds}_attn_{model}.npy', t['attn'])
    save(tmp, f'{ds}_mlp_{model}.npy', t['mlp'])
    save(tmp, f'{ds}_classifier_{model}.npy', np.ascontiguousarray(t['classifier'].T))  # [d, classes]
    save(tmp, f'{ds}_cls_attn_{model}.npy', t['cls_attn'].sum(axis=2))  # [b, l, d], as compute_prs.py
    save(tmp, f'pool_{model}.npy', t['pool'])
    with open(os.path.join(tmp, 'pool.txt'), 'w') as f:
        f.write(''.join(s + '\n' for s in texts))
    labels = t['labels']
    groups = t['groups']
    result = {'reference': 'yossigandelsman/clip_text_span', 'ablation': None, 'completeness': [], 'debias': []}

    # compute_ablations.py
    save(tmp, f'{ds}_labels.npy', labels)
    args = argparse.Namespace(model=model, dataset=ds, input_dir=tmp, figures_dir=tmp, num_workers=0)
    printed = run_quiet(ablations.main, args)
    num = lambda key: float(re.search(rf'^{re.escape(key)}: ([-\d.e]+)$', printed, re.M).group(1))
    result['ablation'] = {
        'baseline': num('Baseline'),
        'mlps': num('+ MLPs ablation'),
        'clsToCls': num('+ CLS ablation'),
        'mlpsAndClsToCls': num('+ MLPs + CLS ablation'),
        'attentionAblations': ast.literal_eval(re.search(r'^Attention ablations: (.*)$', printed, re.M).group(1)),
    }

    # compute_complete_text_set.py
    ref_accuracy = misc.accuracy
    complete.accuracy = lambda output, target, topk=(1,): ref_accuracy(output, torch.from_numpy(labels), topk)
    for run in spec['completeness']:
        args = argparse.Namespace(model=model, dataset=ds, input_dir=tmp, output_dir=tmp, text_dir=tmp, text_descriptions='pool',
                                  num_of_last_layers=run['lastLayers'], w_ov_rank=run['rank'], texts_per_head=run['m'], device='cpu', num_workers=0)
        run_quiet(complete.main, args)
        out = open(os.path.join(tmp, f"{ds}_completeness_pool_top_{run['m']}_heads_{model}.txt")).read()
        heads = []
        for block in re.finditer(r'Layer (\d+), Head (\d+)\n-+\n((?:(?!-{5}).*\n)*)', out):
            heads.append({'layer': int(block.group(1)), 'head': int(block.group(2)), 'texts': block.group(3).rstrip('\n').split('\n')})
        acc = float(re.search(r'Current accuracy: ([-\d.e]+)', out).group(1))
        result['completeness'].append({**run, 'accuracy': acc, 'heads': heads})

    # compute_use_specific_heads.py
    save(tmp, f'{ds}_labels.npy', np.stack([labels, groups], axis=1)[:, :, None])
    tree = ast.parse(inspect.getsource(specific.main))
    fn = tree.body[0]
    assert isinstance(fn.body[0], ast.If), 'main() no longer starts with the per-model head lists'
    fn.body[0:1] = ast.parse('to_mean_ablate_setting = __HEADS__\nto_mean_ablate_geo = []').body
    calls = []
    original = specific.full_accuracy

    def recording(preds, labels_t, attrs):
        r = original(preds, labels_t, attrs)
        cells = {}
        for i in np.unique(labels_t.numpy()):
            for j in np.unique(attrs):
                locs = np.logical_and(labels_t.numpy() == i, attrs == j)
                if locs.any():
                    cells[f'({int(i)}, {int(j)})'] = ref_accuracy(preds[locs], labels_t[locs])[0] * 100
        calls.append({'fullAccuracy': r, 'cells': cells, 'worst': min(cells.values())})
        return r

    for run in spec['debias']:
        calls.clear()
        env = dict(vars(specific))
        env['__HEADS__'] = [tuple(h) for h in run['heads']]
        env['full_accuracy'] = recording
        exec(compile(ast.Module(body=[fn], type_ignores=[]), specific.__file__, 'exec'), env)
        args = argparse.Namespace(model=model, dataset=ds, input_dir=tmp, figures_dir=tmp, num_workers=0)
        run_quiet(env['main'], args)
        result['debias'].append({**run, 'before': calls[0], 'after': calls[1]})

    with open(a.out, 'w') as f:
        json.dump(result, f, indent=1)


if __name__ == '__main__':
    main()
