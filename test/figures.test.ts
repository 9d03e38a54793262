import './helpers/env.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { barChart, barChartSvg, colormap, groupedBarChartSvg, heatmapOverlay, heatmapOverlaySvg, imageGrid, imageGridSvg, lineChart, lineChartSvg, niceTicks, table, type RGBImage } from '../src/report/figures.ts';
import { textWidth, wrapText } from '../src/report/text_metrics.ts';
import { writeReport } from '../src/report/writer.ts';
import { assertLegible } from './helpers/svg_text.ts';

/** Decode a PNG: size and per-channel RGB stats; fails on anything that is not a valid image. */
async function inspect(png: Buffer) {
  assert.equal(png.readUInt32BE(0), 0x89504e47, 'PNG signature');
  const meta = await sharp(png).metadata();
  assert.equal(meta.format, 'png');
  assert.ok((meta.width ?? 0) > 0 && (meta.height ?? 0) > 0);
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  let sum = 0, sq = 0;
  for (let i = 0; i < data.length; i++) {
    sum += data[i];
    sq += data[i] * data[i];
  }
  const mean = sum / data.length;
  return { width: info.width, height: info.height, variance: sq / data.length - mean * mean, data, channels: info.channels };
}

function gradientImage(w: number, h: number, caption?: string): RGBImage {
  const rgb = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      rgb[o] = (x * 255) / (w - 1);
      rgb[o + 1] = (y * 255) / (h - 1);
      rgb[o + 2] = 128;
    }
  return { rgb, width: w, height: h, caption };
}

test('bar chart renders a non-blank PNG of the requested size', async () => {
  const png = await barChart({
    title: 'Accuracy after mean-ablation',
    labels: ['baseline', 'MLPs', 'CLS→CLS', 'layers 0–8'],
    values: [0.78, 0.75, 0.77, -0.1],
    yLabel: 'top-1',
    valueLabels: true,
    width: 500,
    height: 300,
  });
  const im = await inspect(png);
  assert.equal(im.width, 500);
  assert.equal(im.height, 300);
  assert.ok(im.variance > 0);
  // Many long labels switch to rotated labels and still render.
  const many = await barChart({ labels: Array.from({ length: 30 }, (_, i) => `head L${i} a long label`), values: Array.from({ length: 30 }, (_, i) => i) });
  assert.ok((await inspect(many)).variance > 0);
  await assert.rejects(barChart({ labels: ['a'], values: [1, 2] }), /1 labels for 2 values/);
});

test('line chart renders; series lengths are checked', async () => {
  const x = Array.from({ length: 21 }, (_, i) => i);
  const png = await lineChart({
    title: 'TextSpan: accuracy vs texts per head',
    x,
    series: [
      { name: 'ViT-B-16', values: x.map((k) => 0.6 + 0.1 * (1 - Math.exp(-k / 5))) },
      { name: 'missing point', values: x.map((k) => (k === 10 ? NaN : 0.5 + k / 100)) },
    ],
    xLabel: 'k',
    yLabel: 'accuracy',
  });
  const im = await inspect(png);
  assert.equal(im.width, 640);
  assert.ok(im.variance > 0);
  await assert.rejects(lineChart({ x: [1, 2], series: [{ name: 'a', values: [1] }] }), /has 1 values for 2/);
});

test('heatmap overlay: hot region of the map is red (jet) where the map is high', async () => {
  const S = 64;
  const img: RGBImage = { rgb: new Uint8Array(S * S * 3).fill(128), width: S, height: S };
  // 4×4 map, high in the top-left patch only.
  const map = { shape: [4, 4], data: new Float32Array(16) };
  map.data[0] = 1;
  const png = await heatmapOverlay(img, map, { colormap: 'jet', alpha: 1 });
  const im = await inspect(png);
  // A 64-px input is drawn 4× (256 px): at least MIN_DRAWN_PX.
  assert.equal(im.width, 4 * S);
  assert.ok(im.variance > 0);
  const D = 4 * S;
  const px = (x: number, y: number) => Array.from(im.data.subarray((y * D + x) * im.channels, (y * D + x) * im.channels + 3));
  const [r0, , b0] = px(8, 8);
  const [r1, , b1] = px(240, 240);
  assert.ok(r0 > 100 && b0 < 50, `top-left should be red-ish: ${px(8, 8)}`);
  assert.ok(b1 > 100 && r1 < 50, `bottom-right should be blue-ish: ${px(240, 240)}`);
  assert.equal((await inspect(await heatmapOverlay(gradientImage(224, 224), map))).width, 224);
  // With colour bar and title the canvas grows and stays non-blank.
  const withBar = await inspect(await heatmapOverlay(img, map, { colormap: 'viridis', alpha: 0.6, colorbar: true, title: 'head 11.3' }));
  assert.ok(withBar.width > S && withBar.height > S);
  assert.ok(withBar.variance > 0);
  await assert.rejects(heatmapOverlay(img, { shape: [4], data: new Float32Array(4) }), /2-D/);
  await assert.rejects(heatmapOverlay({ rgb: new Uint8Array(5), width: 2, height: 2 }, map), /needs 12/);
});

test('colour maps hit their known end points', () => {
  assert.deepEqual(colormap('jet', 0), [0, 0, 128]);
  assert.deepEqual(colormap('jet', 1), [128, 0, 0]);
  assert.deepEqual(colormap('viridis', 0), [68, 1, 84]);
  assert.deepEqual(colormap('viridis', 1), [253, 231, 37]);
  assert.throws(() => colormap('hot' as 'jet', 0.5), /unknown colour map/);
});

test('image grid lays images out with captions', async () => {
  const imgs = [gradientImage(32, 32, 'a'), gradientImage(48, 24, 'b'), gradientImage(16, 40, 'a very long caption that wraps onto more lines')];
  const png = await imageGrid(imgs, 2, { title: 'neighbours' });
  const im = await inspect(png);
  // Cells of the largest image (48×40), drawn 5× so they are at least 224 px: 2 columns of 240 (+ gaps).
  assert.equal(im.width, 8 + 2 * (240 + 8));
  assert.ok(im.height > 2 * 200);
  assert.ok(im.variance > 0);
  await assert.rejects(imageGrid([], 2), /no images/);
});

test('markdown table escapes cells and right-aligns numeric columns', () => {
  const md = table(['head', 'text', 'acc'], [['L11.H3', 'a|b', 0.123456], ['L10.H1', 'c', 1]]);
  assert.equal(md, '| head | text | acc |\n| --- | --- | ---: |\n| L11.H3 | a\\|b | 0.1235 |\n| L10.H1 | c | 1 |\n');
  assert.throws(() => table(['a', 'b'], [[1]]), /row 0 has 1 cells/);
  assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
});

test('report writer produces json, markdown, html and figure files', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cliplens-report-'));
  try {
    const png = await barChart({ labels: ['x', 'y'], values: [1, 2] });
    const res = await writeReport(dir, {
      title: 'Ablations <test>',
      summary: 'Mean-ablation on random terms.',
      meta: { model: 'ViT-B-16', images: 10 },
      models: [{ name: 'ViT-B-16', fingerprint: '0123456789abcdef' }],
      sections: [
        {
          title: 'Accuracy',
          text: 'Only the last layers matter.',
          figures: [{ name: 'bars', png, caption: 'accuracy' }, { name: 'bars', png }],
          tables: [{ headers: ['setting', 'acc'], rows: [['baseline', 0.5]] }],
          data: { acc: new Float32Array([0.5, 0.25]) },
        },
      ],
    });
    assert.deepEqual(res.files.sort(), ['figures/bars.png', 'figures/bars_2.png', 'index.html', 'report.json', 'report.md'].sort());
    assert.deepEqual((await readdir(join(dir, 'figures'))).sort(), ['bars.png', 'bars_2.png']);
    const json = JSON.parse(await readFile(join(dir, 'report.json'), 'utf8'));
    assert.equal(json.title, 'Ablations <test>');
    assert.deepEqual(json.models, [{ name: 'ViT-B-16', fingerprint: '0123456789abcdef' }]);
    assert.deepEqual(json.sections[0].data.acc, [0.5, 0.25]);
    assert.equal(json.sections[0].figures[0].path, 'figures/bars.png');
    const md = await readFile(join(dir, 'report.md'), 'utf8');
    assert.match(md, /^# Ablations <test>/);
    assert.match(md, /Made by model 'ViT-B-16' \(fingerprint 0123456789abcdef\)\./);
    assert.match(md, /!\[accuracy\]\(figures\/bars\.png\)/);
    assert.match(md, /\| baseline \| 0\.5 \|/);
    const html = await readFile(join(dir, 'index.html'), 'utf8');
    assert.match(html, /<h1>Ablations &lt;test&gt;<\/h1>/);
    assert.match(html, /<img src="figures\/bars_2\.png"/);
    const written = await readFile(join(dir, 'figures/bars.png'));
    assert.ok(written.equals(png));
    const models = [{ name: 'm' }];
    await assert.rejects(writeReport(dir, { title: 't', models, sections: [{ title: 's', figures: [{ name: 'x', png: Buffer.from('nope') }] }] }), /not a PNG/);
    await assert.rejects(writeReport(dir, { title: 't', models: [], sections: [] }), /report\.models must name the model/);
    // A second report into the same folder leaves no figure of the first behind.
    await writeReport(dir, { title: 't2', models, sections: [{ title: 's', figures: [{ name: 'bars', png }] }] });
    assert.deepEqual(await readdir(join(dir, 'figures')), ['bars.png']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('wrapping keeps every character and fits the width', () => {
  const s = 'a photo of a supercalifragilisticexpialidocious cat on a sofa';
  const lines = wrapText(s, 60, 12);
  assert.ok(lines.length > 3);
  for (const l of lines) assert.ok(textWidth(l, 12) <= 60, l);
  assert.equal(lines.join(' ').replace(/ /g, ''), s.replace(/ /g, ''));
  assert.ok(textWidth('WWW', 12) > textWidth('iii', 12));
});

/** Heads as the reports name them, for the last four layers of a model with H heads. */
const headLabels = (L: number, H: number) => Array.from({ length: 4 * H }, (_, i) => `L${L - 4 + Math.floor(i / H)}.H${i % H}`);

for (const S of [32, 224]) {
  test(`every figure type at ${S}-px model inputs: drawn at ≥ 224 px, no label cut, off the canvas or overlapping`, async () => {
    const title = "'chelsea the cat sitting on a red sofa' − 'a photo of a dog': where each text is read";
    const grid = S / 16;
    const map = { shape: [grid, grid], data: Float32Array.from({ length: grid * grid }, (_, i) => Math.sin(i) * 1e-3) };
    const heat = await heatmapOverlaySvg(gradientImage(S, S), map, { title, colorbar: true });
    assertLegible(heat.svg!, [title], `heatmap ${S}px`);
    assert.ok((await sharp(heat.png).metadata()).width! >= 224);

    const panels = [gradientImage(S, S, 'all heads'), ...Array.from({ length: 5 }, (_, i) => gradientImage(S, S, `L11.H${i + 7}  ${(-0.01234 * (i + 1)).toExponential(2)}`))];
    const joint = await imageGridSvg(panels, 5, { title: "'a photo of a cat on a sofa': top 5 heads" });
    assertLegible(joint, ["'a photo of a cat on a sofa': top 5 heads", ...panels.map((p) => p.caption!)], `joint grid ${S}px`);
    assert.match(joint, /<image x="[\d.]+" y="[\d.]+" width="(2[2-9]\d|[3-9]\d\d)(\.\d+)?"/);
    const seg = [gradientImage(S, S, 'chelsea.png: a photo of a tabby cat'), gradientImage(S, S, 'predicted'), gradientImage(S, S, 'ground truth')];
    assertLegible(await imageGridSvg(seg, 3, { title: 'map, predicted mask, ground truth' }), seg.map((p) => p.caption!), `segmentation grid ${S}px`);

    // Charts: TextSpan heads of a small model (6 layers × 4 heads) and of ViT-B-16 / ViT-H-14.
    for (const labels of [headLabels(6, 4), headLabels(12, 12), headLabels(32, 16)]) {
      const svg = barChartSvg({ title: `Variance explained by 10 texts per head (${labels.length} heads)`, labels, values: labels.map((_, i) => (i * 37) % 100), yLabel: 'variance explained (%)', yMin: 0, yMax: 100 });
      assertLegible(svg, labels, `TextSpan bars, ${labels.length} heads`);
    }
    const abl = ['nothing (baseline)', 'all MLPs', 'CLS→CLS', 'MLPs + CLS→CLS', ...Array.from({ length: S === 32 ? 6 : 24 }, (_, l) => `attn ≤ ${l}`)];
    assertLegible(barChartSvg({ title: 'Zero-shot accuracy after mean-ablation', labels: abl, values: abl.map((_, i) => 100 - 3.3333 * i), yMin: 0, yMax: 100, valueLabels: true, yLabel: 'accuracy (%)' }), abl, 'ablation bars');
    const groups = Array.from({ length: 48 }, (_, i) => `${['circle', 'square', 'triangle', 'star', 'cross', 'ring'][i % 6]} / ${['plain', 'stripes', 'dots', 'grid', 'waves', 'checker', 'noise', 'a very long background name'][Math.floor(i / 6)]}`);
    const series = [{ name: 'before', values: groups.map((_, i) => (i * 13) % 100) }, { name: 'after (heads L4.H2, L0.H2 mean-ablated)', values: groups.map((_, i) => (i * 29) % 100) }, { name: 'random heads', values: groups.map((_, i) => (i * 7) % 100) }];
    assertLegible(groupedBarChartSvg({ title: 'Accuracy per (label, group): before, after, random heads', groups, series, xLabel: 'accuracy (%)', xMin: 0, xMax: 100 }), [...groups, ...series.map((x) => x.name)], 'debias chart, 48 groups');
    const names = ['reconstructed from m texts', 'chosen layers intact, everything else as the protocol says', 'full model'];
    const line = lineChartSvg({ title: 'Accuracy with heads replaced by their TextSpan reconstruction (reference protocol)', x: [1, 2, 5, 10, 20, 40, 60, 80], series: names.map((name, k) => ({ name, values: [1, 2, 5, 10, 20, 40, 60, 80].map((m) => 50 + k * 10 + m / 10) })), xLabel: 'texts per head (m)', yLabel: 'accuracy (%)' });
    assertLegible(line, names, 'TextSpan accuracy curve');
  });
}
