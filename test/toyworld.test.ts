import './helpers/env.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import {
  ATTRIBUTES, COLOR_JITTER, COLOR_RGB, FAMILIES, attributePrompts, generateScene, generateScenes,
  mulberry32, partnerValue, sampleCaption, type Scene,
} from '../src/toyworld/index.ts';
import { ClipTokenizer } from '../src/model/tokenizer.ts';
import { ToyworldError } from '../src/errors.ts';
import { parseOpenClipConfig, visionDims } from '../src/model/config.ts';
import { SafetensorsFile } from '../src/io/safetensors.ts';
import { loadClip } from '../src/runtime/load.ts';
import { zeroShot } from '../src/toyworld_study/ablation.ts';
import { balancedSet, sceneSet, type SceneSet } from '../src/toyworld_study/data.ts';
import { familyClassifiers } from '../src/toyworld_study/texts.ts';

const POSITION_PHRASE: Record<string, string> = { left: 'on the left', right: 'on the right', top: 'at the top', bottom: 'at the bottom' };

/** 4-connected components of a mask with their pixel counts and centroids. */
function components(mask: Uint8Array, S: number): { area: number; cx: number; cy: number }[] {
  const seen = new Uint8Array(S * S);
  const out: { area: number; cx: number; cy: number }[] = [];
  for (let p0 = 0; p0 < S * S; p0++) {
    if (!mask[p0] || seen[p0]) continue;
    const stack = [p0];
    seen[p0] = 1;
    let area = 0, sx = 0, sy = 0;
    while (stack.length) {
      const p = stack.pop()!;
      const x = p % S, y = (p - x) / S;
      area++; sx += x; sy += y;
      for (const [nx, ny] of [[x - 1, y], [x + 1, y], [x, y - 1], [x, y + 1]]) {
        if (nx < 0 || ny < 0 || nx >= S || ny >= S) continue;
        const q = ny * S + nx;
        if (mask[q] && !seen[q]) { seen[q] = 1; stack.push(q); }
      }
    }
    out.push({ area, cx: sx / area + 0.5, cy: sy / area + 0.5 });
  }
  return out;
}

test('same seed gives the same bytes; different seeds differ', () => {
  const a = generateScene(1234), b = generateScene(1234), c = generateScene(1235);
  assert.deepEqual(a.image, b.image);
  assert.deepEqual(a.mask, b.mask);
  assert.deepEqual(a.labels, b.labels);
  assert.equal(a.caption, b.caption);
  assert.notDeepEqual(a.image, c.image);
  assert.equal(a.image.length, 64 * 64 * 3);
  assert.equal(a.mask.length, 64 * 64);
  const xs = generateScenes(20, 7), ys = generateScenes(20, 7), zs = generateScenes(20, 8);
  for (let i = 0; i < 20; i++) assert.deepEqual(xs[i].image, ys[i].image);
  assert.ok(xs.some((s, i) => !s.image.every((v, j) => v === zs[i].image[j])), 'split seeds 7 and 8 gave identical scenes');
  assert.equal(new Set(xs.map((s) => Buffer.from(s.image).toString('base64'))).size, 20, 'scenes within a split repeat');
});

test('mask covers exactly the pixels drawn in the object colour, with the labelled count, size and position', () => {
  const scenes = generateScenes(400, 99);
  const areas: Record<string, number[]> = { small: [], large: [] };
  for (const s of scenes) {
    const S = s.size;
    let rgb: number[] | undefined;
    for (let p = 0; p < S * S; p++) {
      if (!s.mask[p]) continue;
      const px = [s.image[p * 3], s.image[p * 3 + 1], s.image[p * 3 + 2]];
      if (!rgb) rgb = px;
      assert.deepEqual(px, rgb, 'mask pixels differ in colour');
    }
    assert.ok(rgb, `scene ${s.caption} has an empty mask`);
    const base = COLOR_RGB[s.labels.color];
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(rgb[c] - base[c]) <= COLOR_JITTER, `colour ${rgb} is not ${s.labels.color}`);
    for (let p = 0; p < S * S; p++) {
      if (s.mask[p]) continue;
      const same = s.image[p * 3] === rgb[0] && s.image[p * 3 + 1] === rgb[1] && s.image[p * 3 + 2] === rgb[2];
      assert.ok(!same, 'a background pixel has the object colour');
    }
    const comps = components(s.mask, S);
    assert.equal(comps.length, { one: 1, two: 2, three: 3 }[s.labels.count], `count ${s.labels.count} but ${comps.length} objects`);
    for (const c of comps) areas[s.labels.size].push(c.area);
    const mx = comps.reduce((a, c) => a + c.cx, 0) / comps.length;
    const my = comps.reduce((a, c) => a + c.cy, 0) / comps.length;
    const where = { left: mx < 0.4 * S, right: mx > 0.6 * S, top: my < 0.4 * S, bottom: my > 0.6 * S }[s.labels.position];
    assert.ok(where, `position ${s.labels.position} but centroid (${mx.toFixed(1)}, ${my.toFixed(1)})`);
  }
  assert.ok(Math.max(...areas.small) < Math.min(...areas.large), 'small and large objects overlap in area');
});

test('the scene caption names every label; sampled captions name only what they mention', () => {
  for (const s of generateScenes(300, 5)) {
    const c = s.caption;
    const plural = s.labels.count !== 'one';
    const noun = plural ? (s.labels.shape === 'cross' ? 'crosses' : `${s.labels.shape}s`) : s.labels.shape;
    for (const w of [s.labels.size, s.labels.color, s.labels.count, noun, s.labels.background]) {
      assert.match(c, new RegExp(`\\b${w}\\b`), `caption '${c}' lacks '${w}'`);
    }
    assert.ok(c.includes(POSITION_PHRASE[s.labels.position]), `caption '${c}' lacks the position`);
  }
  const rng = mulberry32(3);
  const labels = generateScene(11).labels;
  for (let i = 0; i < 200; i++) {
    const sc = sampleCaption(labels, rng, 0.5);
    assert.ok(sc.mention.length >= 1);
    for (const fam of FAMILIES) {
      if (fam === 'count' || fam === 'position') continue;
      const named = ATTRIBUTES[fam].filter((v) => new RegExp(`\\b${v}(e?s)?\\b`).test(sc.caption));
      if (sc.mention.includes(fam)) assert.deepEqual(named, [labels[fam]], `'${sc.caption}' ${fam}`);
      else assert.deepEqual(named, [], `'${sc.caption}' names ${fam} though it was dropped`);
      assert.ok(sc.constraints[fam].includes(labels[fam]), 'a caption is not true of its own image');
    }
  }
});

test('correlate gives the requested rate; the balanced split keeps attributes independent', () => {
  const n = 4000;
  const rate = (scenes: Scene[]) => scenes.filter((s) => s.labels.background === partnerValue('shape', 'background', s.labels.shape)).length / n;
  const corr = generateScenes(n, 21, { correlate: { a: 'shape', b: 'background', p: 0.9 } });
  assert.ok(Math.abs(rate(corr) - 0.9) < 0.02, `correlated rate ${rate(corr)}`);
  const bal = generateScenes(n, 21);
  assert.ok(Math.abs(rate(bal) - 0.25) < 0.03, `balanced rate ${rate(bal)}`);
  // Every (shape, background) cell near n/16; the shape marginal stays uniform in both.
  for (const sh of ATTRIBUTES.shape) {
    for (const bg of ATTRIBUTES.background) {
      const k = bal.filter((s) => s.labels.shape === sh && s.labels.background === bg).length;
      assert.ok(Math.abs(k - n / 16) < 75, `balanced cell ${sh}/${bg}: ${k}`);
    }
    const m = corr.filter((s) => s.labels.shape === sh).length;
    assert.ok(Math.abs(m - n / 4) < 120, `correlated shape marginal ${sh}: ${m}`);
  }
  // Other families are untouched by the correlation.
  const red = corr.filter((s) => s.labels.color === 'red').length / n;
  assert.ok(Math.abs(red - 1 / 7) < 0.025, `colour marginal ${red}`);
});

test('bad options are refused with a clear message', () => {
  assert.throws(() => generateScene(1, { correlate: { a: 'shape', b: 'weather', p: 0.9 } }), (e: Error) => e instanceof ToyworldError && /weather/.test(e.message));
  assert.throws(() => generateScene(1, { correlate: { a: 'shape', b: 'shape', p: 0.9 } }), ToyworldError);
  assert.throws(() => generateScene(1, { correlate: { a: 'shape', b: 'color', p: 1.5 } }), /\[0, 1\]/);
  assert.throws(() => generateScene(1, { size: 10 }), /size/);
  assert.throws(() => generateScene(1.5), /seed/);
  assert.throws(() => attributePrompts('weather'), /unknown attribute family 'weather'/);
});

test('zero-shot prompts name their value, and every caption fits context length 32', () => {
  const tok = ClipTokenizer.default();
  for (const fam of FAMILIES) {
    const groups = attributePrompts(fam);
    assert.deepEqual(groups.map((g) => g.value), ATTRIBUTES[fam]);
    for (const g of groups) {
      assert.ok(g.prompts.length >= 2);
      const word = fam === 'position' ? POSITION_PHRASE[g.value] : g.value;
      for (const p of g.prompts) assert.ok(p.includes(word), `prompt '${p}' lacks '${word}'`);
    }
  }
  const longest = generateScenes(200, 1).map((s) => s.caption).sort((a, b) => b.length - a.length).slice(0, 5);
  const t = tok.tokenize(longest, 32);
  for (let i = 0; i < longest.length; i++) assert.equal(t[i * 32 + 31], 0, `'${longest[i]}' does not fit 32 tokens`);
});

for (const dir of ['models/toyworld', 'models/toyworld-correlated']) test(`committed checkpoint ${dir} matches its config`, () => {
  assert.ok(existsSync(`${dir}/open_clip_config.json`), `${dir}/open_clip_config.json is missing (train with tools/train_toyworld.py)`);
  const hub = JSON.parse(readFileSync(`${dir}/open_clip_config.json`, 'utf8'));
  const cfg = parseOpenClipConfig(hub.model_cfg, hub.preprocess_cfg);
  assert.equal(cfg.text.contextLength, 32);
  assert.equal(cfg.vision.imageSize, generateScene(0).size, 'training images must be generated at image_size');
  const path = `${dir}/open_clip_model.safetensors`;
  assert.ok(statSync(path).size < 20e6, 'checkpoint over 20 MB');
  const f = SafetensorsFile.open(path);
  try {
    const info = f.tensors;
    const { tokens, hidden } = visionDims(cfg.vision);
    const D = cfg.vision.width;
    const expect: [string, number[]][] = [
      ['visual.conv1.weight', [D, 3, cfg.vision.patchSize, cfg.vision.patchSize]],
      ['visual.positional_embedding', [tokens, D]],
      ['visual.proj', [D, cfg.embedDim]],
      [`visual.transformer.resblocks.${cfg.vision.layers - 1}.attn.in_proj_weight`, [3 * D, D]],
      [`visual.transformer.resblocks.${cfg.vision.layers - 1}.mlp.c_fc.weight`, [hidden, D]],
      ['token_embedding.weight', [49408, cfg.text.width]],
      ['positional_embedding', [32, cfg.text.width]],
      ['text_projection', [cfg.text.width, cfg.embedDim]],
      ['logit_scale', []],
    ];
    for (const [name, shape] of expect) {
      assert.ok(info.has(name), `checkpoint lacks ${name}`);
      assert.deepEqual(info.get(name)!.shape, shape, name);
      assert.equal(info.get(name)!.dtype, 'F16', name);
    }
    assert.ok(!info.has(`visual.transformer.resblocks.${cfg.vision.layers}.ln_1.weight`), 'more vision layers than the config says');
  } finally {
    f.close();
  }
});

test('committed models/toyworld-correlated learned the shape~background cue; models/toyworld did not', async () => {
  const gap = async (name: string) => {
    const model = await loadClip(name, { threads: 1 });
    try {
      const cls = (await familyClassifiers(model)).shape;
      const acc = async (set: SceneSet) => zeroShot((await model.encodeImages(set.pixels, 32)).data, model.config.embedDim, cls, set.labels.shape);
      const balanced = await acc(balancedSet(model, 'shape', 'background', 6, 77));
      const correlated = await acc(sceneSet(model, 96, 78, { correlate: { a: 'shape', b: 'background', p: 0.9 } }));
      return { balanced, correlated };
    } finally {
      await model.release();
    }
  };
  const corr = await gap('toyworld-correlated');
  const main = await gap('toyworld');
  // Trained where shape predicts background, the model reads shape off the background: right
  // when they agree, often wrong when they do not. The independently trained model reads shape.
  assert.ok(corr.correlated - corr.balanced > 0.15, `correlated model: ${JSON.stringify(corr)}`);
  assert.ok(main.balanced > 0.9 && Math.abs(main.correlated - main.balanced) < 0.08, `main model: ${JSON.stringify(main)}`);
});
