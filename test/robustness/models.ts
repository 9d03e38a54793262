// Hostile model files: a float tensor relabelled as integers, NaN/Inf weights, absurd or wrong
// config depths (open_clip and Hugging Face layouts), widths that do not match the checkpoint.

import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe } from 'node:test';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.ts';
import { resolveModel } from '../../src/model/resolve.ts';
import type { Tensor } from '../../src/tensor.ts';
import { referencePath, TINY_A } from '../helpers/fixtures.ts';
import { writeHfClipDir } from '../helpers/hf_convert.ts';
import { cli, cliOneLine, hostile, oneLine } from './tally.ts';

const G = 'model files';
const CFG = JSON.parse(readFileSync(referencePath('tiny_a.json'), 'utf8'));

/** tiny_a's weights under `name`.safetensors with `name`.json (open_clip layout) beside them. */
function variant(tmp: string, name: string, edit: { tensors?: (t: Map<string, Tensor>) => void; config?: (c: typeof CFG) => void; bytes?: (b: Buffer) => Buffer }): string {
  const path = join(tmp, `${name}.safetensors`);
  if (edit.tensors) {
    const t = readSafetensors(TINY_A());
    edit.tensors(t);
    writeSafetensors(path, t);
  } else {
    writeFileSync(path, edit.bytes ? edit.bytes(readFileSync(TINY_A())) : readFileSync(TINY_A()));
  }
  const cfg = structuredClone(CFG);
  edit.config?.(cfg);
  writeFileSync(join(tmp, `${name}.json`), JSON.stringify(cfg));
  return path;
}

/** Rewrite one tensor's dtype in the header (same byte length: 'F32' → 'I32'). */
function relabel(b: Buffer, tensor: string, to: string): Buffer {
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.toString('utf8', 8, 8 + n));
  header[tensor].dtype = to;
  const json = Buffer.from(JSON.stringify(header).padEnd(n, ' '));
  assert.equal(json.length, n);
  return Buffer.concat([b.subarray(0, 8), json, b.subarray(8 + n)]);
}

const poison = (name: string, value: number, at = 0) => (t: Map<string, Tensor>) => {
  (t.get(name)!.data as Float32Array)[at] = value;
};

export function modelCases(tmp: string, image: string): void {
  describe('model files', () => {
    hostile(G, 'an F32 tensor relabelled I32 (same byte size) is refused naming it', () =>
      oneLine(resolveModel(variant(tmp, 'relabel', { bytes: (b) => relabel(b, 'visual.proj', 'I32') })), /tensor 'visual\.proj' has dtype I32 where a float \(F32, F16, BF16, F64\) is expected/),
    );

    hostile(G, 'an F32 tensor relabelled I32 in the Hugging Face layout', () => {
      const dir = join(tmp, 'hf-relabel');
      writeHfClipDir(dir, readSafetensors(TINY_A()), CFG);
      const w = join(dir, 'model.safetensors');
      writeFileSync(w, relabel(readFileSync(w), 'text_projection.weight', 'I32'));
      return oneLine(resolveModel(dir), /text_projection.* has dtype I32 where a float/);
    });

    hostile(G, 'NaN in a vision weight: encode refuses the NaN embedding', () => {
      const m = variant(tmp, 'nan', { tensors: poison('visual.transformer.resblocks.1.mlp.c_fc.weight', NaN, 17) });
      return cliOneLine(['encode', '--model', m, image, '--out', join(tmp, 'nan-out.safetensors')], /vision tower's image_features holds NaN \(image 0 of 1\).*--check-weights/);
    });

    hostile(G, 'NaN in a vision weight: heatmap gives an error, not a map of nulls', () =>
      cliOneLine(['heatmap', '--model', join(tmp, 'nan.safetensors'), '--text', 'a dog', image, '--json'], /holds NaN/),
    );

    hostile(G, 'NaN in a vision weight: --check-weights names the tensor', () =>
      cliOneLine(['encode', '--model', join(tmp, 'nan.safetensors'), '--check-weights', image, '--out', join(tmp, 'nan-out.safetensors')], /tensor 'visual\.transformer\.resblocks\.1\.mlp\.c_fc\.weight' holds NaN/),
    );

    hostile(G, '+Inf in a text weight: text embeddings are refused', () => {
      const m = variant(tmp, 'inf', { tensors: poison('ln_final.weight', Infinity) });
      return cliOneLine(['encode', '--model', m, '--text', 'a photo of a dog', '--out', join(tmp, 'inf-out.safetensors')], /text_features holds (NaN|[+-]Inf) \(text 0 of 1\)/);
    });

    hostile(G, 'the same checkpoint without poison still encodes (control)', () => {
      const m = variant(tmp, 'clean', {});
      const r = cli(['encode', '--model', m, '--check-weights', image, '--text', 'a dog', '--out', join(tmp, 'clean-out.safetensors')]);
      assert.equal(r.code, 0, r.stderr);
      return 'handled';
    });

    hostile(G, 'vision_cfg.layers: 1000000000 is refused at once, naming the field and what the checkpoint holds', () =>
      oneLine(
        resolveModel(variant(tmp, 'deep', { config: (c) => (c.vision_cfg.layers = 1_000_000_000) })),
        /vision_cfg\.layers = 1000000000 in the config, but the checkpoint .*deep\.safetensors holds 6 vision layers \(visual\.transformer\.resblocks\.0 to \.5\)/,
      ),
    );

    hostile(G, 'text_cfg.layers smaller than the checkpoint holds', () =>
      oneLine(resolveModel(variant(tmp, 'shallow', { config: (c) => (c.text_cfg.layers = 1) })), /text_cfg\.layers = 1 in the config, but the checkpoint .* holds 4 text layers/),
    );

    hostile(G, 'vision_config.num_hidden_layers: 1000000000 (Hugging Face layout)', () => {
      const dir = join(tmp, 'hf-deep');
      writeHfClipDir(dir, readSafetensors(TINY_A()), CFG);
      const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
      cfg.vision_config.num_hidden_layers = 1_000_000_000;
      writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
      return oneLine(resolveModel(dir), /vision_config\.num_hidden_layers = 1000000000 in the config, but the checkpoint .* holds 6 vision layers/);
    });

    hostile(G, 'vision_cfg.width: 1000000000 against a 128-wide checkpoint', () =>
      oneLine(resolveModel(variant(tmp, 'wide', { config: (c) => ((c.vision_cfg.width = 1_000_000_000), (c.vision_cfg.head_width = 1_000_000_000)) })), /has shape \[128\] but the config implies \[1000000000\]/),
    );

    hostile(G, 'a model path that is a symbolic link loop', () => {
      const loop = join(tmp, 'loop-model.safetensors');
      symlinkSync('loop-model.safetensors', loop);
      return oneLine(resolveModel(loop), /loop-model\.safetensors is a symbolic link loop/);
    });

    hostile(G, 'a config file with a UTF-8 byte-order mark is read', async () => {
      const m = variant(tmp, 'bom', {});
      writeFileSync(join(tmp, 'bom.json'), Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), readFileSync(join(tmp, 'bom.json'))]));
      const r = await resolveModel(m);
      r.weights.close();
      assert.equal(r.config.vision.layers, 6);
      return 'handled';
    });

    hostile(G, 'a config copied over its checkpoint (JSON where safetensors belong)', () => {
      const m = join(tmp, 'swapped.safetensors');
      copyFileSync(referencePath('tiny_a.json'), m);
      copyFileSync(referencePath('tiny_a.json'), join(tmp, 'swapped.json'));
      return oneLine(resolveModel(m), /swapped\.safetensors: header claims \d+ bytes/);
    });
  });
}
