// Figures for reports: charts drawn as SVG and rasterised by sharp (librsvg), heatmap overlays
// and image grids composed from raw RGB, markdown tables. Every figure function returns a PNG.

import sharp from 'sharp';
import { upsampleBilinear } from '../io/resample.ts';
import { FigureError } from '../errors.ts';

const FONT = 'sans-serif';
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

export interface RGBImage {
  /** Interleaved RGB bytes, row-major. */
  rgb: Uint8Array | Uint8ClampedArray; // [height, width, 3]
  width: number;
  height: number;
  caption?: string;
}

/** A 2-D float map, e.g. F32 tensors of shape [h, w]. */
export interface Map2D {
  shape: readonly number[];
  data: ArrayLike<number>;
}

// ---------------------------------------------------------------------------------------------
// Helpers

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Shorten text to about `px` pixels at `size` px font (sans-serif ≈ 0.6·size per glyph). */
function fit(s: string, px: number, size: number): string {
  const max = Math.max(1, Math.floor(px / (0.6 * size)));
  return s.length <= max ? s : s.slice(0, Math.max(1, max - 1)) + '…';
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

/** About `count` round tick values, the first ≤ lo and the last ≥ hi. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    lo = 0;
    hi = 1;
  }
  if (!(hi > lo)) {
    const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw * (1 - 1e-9)) ?? 10 * mag;
  const first = Math.floor(lo / step + 1e-9), last = Math.ceil(hi / step - 1e-9);
  const out: number[] = [];
  for (let i = first; i <= last; i++) out.push(Number((i * step).toPrecision(12)));
  return out;
}

async function rasterise(svg: string): Promise<Buffer> {
  return sharp(Buffer.from(svg)).flatten({ background: '#ffffff' }).png().toBuffer();
}

/** PNG from interleaved RGB bytes. */
export async function encodePng(img: RGBImage): Promise<Buffer> {
  checkImage(img);
  return sharp(Buffer.from(img.rgb.buffer, img.rgb.byteOffset, img.rgb.byteLength), {
    raw: { width: img.width, height: img.height, channels: 3 },
  })
    .png()
    .toBuffer();
}

function checkImage(img: RGBImage) {
  if (!img || !Number.isInteger(img.width) || !Number.isInteger(img.height) || img.width < 1 || img.height < 1)
    throw new FigureError(`image needs positive integer width and height, got ${img?.width}x${img?.height}`);
  if (img.rgb.length !== img.width * img.height * 3)
    throw new FigureError(`image has ${img.rgb.length} bytes, ${img.width}x${img.height} RGB needs ${img.width * img.height * 3}`);
}

function svgOpen(w: number, h: number): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" ` +
    `font-family="${FONT}"><rect width="${w}" height="${h}" fill="#ffffff"/>`
  );
}

function titleSvg(title: string | undefined, w: number): string {
  return title ? `<text x="${w / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">${esc(fit(title, w - 20, 16))}</text>` : '';
}

// ---------------------------------------------------------------------------------------------
// Colour maps

// matplotlib 'jet' (piecewise linear in each channel).
const JET: [number, number][][] = [
  [[0, 0], [0.35, 0], [0.66, 1], [0.89, 1], [1, 0.5]],
  [[0, 0], [0.125, 0], [0.375, 1], [0.64, 1], [0.91, 0], [1, 0]],
  [[0, 0.5], [0.11, 1], [0.34, 1], [0.65, 0], [1, 0]],
];
// matplotlib 'viridis' sampled at 0, 0.1, …, 1.
const VIRIDIS = [
  0x440154, 0x482475, 0x414487, 0x355f8d, 0x2a788e, 0x21918c, 0x22a884, 0x44bf70, 0x7ad151, 0xbddf26, 0xfde725,
];

export type ColormapName = 'jet' | 'viridis';

/** Colour of t ∈ [0, 1] (clamped) under a colour map, as [r, g, b] bytes. */
export function colormap(name: ColormapName, t: number): [number, number, number] {
  const x = Number.isFinite(t) ? Math.min(1, Math.max(0, t)) : 0;
  if (name === 'jet') {
    return JET.map((pts) => {
      let i = 1;
      while (i < pts.length - 1 && pts[i][0] < x) i++;
      const [x0, y0] = pts[i - 1], [x1, y1] = pts[i];
      const v = x1 > x0 ? y0 + ((y1 - y0) * (x - x0)) / (x1 - x0) : y1;
      return Math.round(255 * Math.min(1, Math.max(0, v)));
    }) as [number, number, number];
  }
  if (name === 'viridis') {
    const p = x * (VIRIDIS.length - 1);
    const i = Math.min(VIRIDIS.length - 2, Math.floor(p));
    const f = p - i;
    const a = VIRIDIS[i], b = VIRIDIS[i + 1];
    return [16, 8, 0].map((s) => Math.round(((a >> s) & 255) * (1 - f) + ((b >> s) & 255) * f)) as [number, number, number];
  }
  throw new FigureError(`unknown colour map '${name}' (use 'jet' or 'viridis')`);
}

// ---------------------------------------------------------------------------------------------
// Bar chart

export interface BarChartOptions {
  title?: string;
  labels: string[];
  values: number[];
  yLabel?: string;
  width?: number;
  height?: number;
  /** One colour for all bars, or one per bar. */
  color?: string | string[];
  /** Print each value above its bar. */
  valueLabels?: boolean;
  yMin?: number;
  yMax?: number;
}

export async function barChart(o: BarChartOptions): Promise<Buffer> {
  if (o.labels.length !== o.values.length)
    throw new FigureError(`barChart: ${o.labels.length} labels for ${o.values.length} values`);
  if (o.values.length === 0) throw new FigureError('barChart: no values');
  const W = o.width ?? 640, Hh = o.height ?? 400;
  const finite = o.values.filter(Number.isFinite);
  const lo = o.yMin ?? Math.min(0, ...finite);
  const hi = o.yMax ?? Math.max(0, ...finite, lo + 1e-12);
  const all = niceTicks(lo, hi, 5);
  const y0v = o.yMin ?? all[0], y1v = o.yMax ?? all[all.length - 1];
  const ticks = all.filter((t) => t >= y0v - 1e-12 && t <= y1v + 1e-12);
  const longest = Math.max(...o.labels.map((l) => l.length));
  const rotate = o.labels.length > 8 || longest * 7 > (W - 80) / o.labels.length;
  const labelPx = Math.min(longest, 24) * 6.6; // rotated labels run down-left at 45°
  const bottom = rotate ? Math.round(labelPx * 0.71 + 24) : 40;
  const slot0 = (W - 80) / o.values.length;
  const left = rotate ? Math.max(64, Math.round(labelPx * 0.71 - slot0 / 2 + 8)) : 64;
  const right = 16, top = o.title ? 40 : 16;
  const pw = W - left - right, ph = Hh - top - bottom;
  if (pw < 20 || ph < 20) throw new FigureError(`barChart: ${W}x${Hh} is too small for the plot`);
  const Y = (v: number) => top + ph - ((Math.min(y1v, Math.max(y0v, v)) - y0v) / (y1v - y0v || 1)) * ph;
  let s = svgOpen(W, Hh) + titleSvg(o.title, W);
  for (const t of ticks) {
    const y = Y(t);
    s += `<line x1="${left}" x2="${left + pw}" y1="${y}" y2="${y}" stroke="#e0e0e0"/>`;
    s += `<text x="${left - 6}" y="${y + 4}" text-anchor="end" font-size="11">${esc(fmt(t))}</text>`;
  }
  const slot = pw / o.values.length;
  const bw = Math.max(1, slot * 0.75);
  o.values.forEach((v, i) => {
    const x = left + i * slot + (slot - bw) / 2;
    const color = Array.isArray(o.color) ? o.color[i % o.color.length] : (o.color ?? PALETTE[0]);
    if (Number.isFinite(v)) {
      const ya = Y(Math.max(v, 0)), yb = Y(Math.min(v, 0));
      s += `<rect x="${x}" y="${ya}" width="${bw}" height="${Math.max(0.5, yb - ya)}" fill="${esc(color)}"/>`;
      if (o.valueLabels)
        s += `<text x="${x + bw / 2}" y="${v >= 0 ? ya - 3 : yb + 12}" text-anchor="middle" font-size="10">${esc(fmt(v))}</text>`;
    }
    const cx = left + i * slot + slot / 2, ly = top + ph + 14;
    const label = esc(fit(o.labels[i], rotate ? labelPx : slot, 11));
    s += rotate
      ? `<text x="${cx}" y="${ly}" text-anchor="end" font-size="11" transform="rotate(-45 ${cx} ${ly})">${label}</text>`
      : `<text x="${cx}" y="${ly}" text-anchor="middle" font-size="11">${label}</text>`;
  });
  s += `<line x1="${left}" x2="${left + pw}" y1="${Y(0 >= y0v && 0 <= y1v ? 0 : y0v)}" y2="${Y(0 >= y0v && 0 <= y1v ? 0 : y0v)}" stroke="#000"/>`;
  s += `<line x1="${left}" x2="${left}" y1="${top}" y2="${top + ph}" stroke="#000"/>`;
  if (o.yLabel)
    s += `<text x="14" y="${top + ph / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 14 ${top + ph / 2})">${esc(fit(o.yLabel, ph, 12))}</text>`;
  return rasterise(s + '</svg>');
}

// ---------------------------------------------------------------------------------------------
// Line chart

export interface LineSeries {
  name: string;
  values: number[];
  color?: string;
}

export interface LineChartOptions {
  title?: string;
  x: number[];
  series: LineSeries[];
  xLabel?: string;
  yLabel?: string;
  width?: number;
  height?: number;
  yMin?: number;
  yMax?: number;
}

export async function lineChart(o: LineChartOptions): Promise<Buffer> {
  if (o.series.length === 0) throw new FigureError('lineChart: no series');
  if (o.x.length === 0) throw new FigureError('lineChart: no x values');
  for (const se of o.series)
    if (se.values.length !== o.x.length)
      throw new FigureError(`lineChart: series '${se.name}' has ${se.values.length} values for ${o.x.length} x positions`);
  const W = o.width ?? 640, Hh = o.height ?? 400;
  const left = 64, right = 16, top = o.title ? 40 : 16, bottom = o.xLabel ? 52 : 36;
  const pw = W - left - right, ph = Hh - top - bottom;
  if (pw < 20 || ph < 20) throw new FigureError(`lineChart: ${W}x${Hh} is too small for the plot`);
  const ys = o.series.flatMap((se) => se.values.filter(Number.isFinite));
  const xsF = o.x.filter(Number.isFinite);
  const ytAll = niceTicks(o.yMin ?? Math.min(...ys), o.yMax ?? Math.max(...ys), 5);
  const ylo = o.yMin ?? ytAll[0], yhi = o.yMax ?? ytAll[ytAll.length - 1];
  const yt = ytAll.filter((t) => t >= ylo - 1e-12 && t <= yhi + 1e-12);
  // x spans the data exactly; ticks inside it.
  const xlo = Math.min(...xsF), xhi = Math.max(...xsF);
  const xt = niceTicks(xlo, xhi, 6).filter((t) => t >= xlo - 1e-12 && t <= xhi + 1e-12);
  const X = (v: number) => left + ((v - xlo) / (xhi - xlo || 1)) * pw;
  const Y = (v: number) => top + ph - ((v - ylo) / (yhi - ylo || 1)) * ph;
  let s = svgOpen(W, Hh) + titleSvg(o.title, W);
  for (const t of yt) {
    s += `<line x1="${left}" x2="${left + pw}" y1="${Y(t)}" y2="${Y(t)}" stroke="#e0e0e0"/>`;
    s += `<text x="${left - 6}" y="${Y(t) + 4}" text-anchor="end" font-size="11">${esc(fmt(t))}</text>`;
  }
  for (const t of xt) s += `<text x="${X(t)}" y="${top + ph + 16}" text-anchor="middle" font-size="11">${esc(fmt(t))}</text>`;
  s += `<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#000"/>`;
  o.series.forEach((se, k) => {
    const color = esc(se.color ?? PALETTE[k % PALETTE.length]);
    // Break the line at missing values.
    let path = '';
    let pen = false;
    se.values.forEach((v, i) => {
      if (!Number.isFinite(v) || !Number.isFinite(o.x[i])) {
        pen = false;
        return;
      }
      path += `${pen ? 'L' : 'M'}${X(o.x[i]).toFixed(2)},${Y(v).toFixed(2)} `;
      pen = true;
      s += `<circle cx="${X(o.x[i])}" cy="${Y(v)}" r="2.5" fill="${color}"/>`;
    });
    if (path) s += `<path d="${path}" fill="none" stroke="${color}" stroke-width="2"/>`;
  });
  if (o.series.length > 1 || o.series[0].name) {
    const lw = Math.min(220, 30 + 7 * Math.max(...o.series.map((se) => se.name.length)));
    const lx = left + pw - lw - 6;
    s += `<rect x="${lx}" y="${top + 6}" width="${lw}" height="${8 + 16 * o.series.length}" fill="#ffffff" fill-opacity="0.85" stroke="#999"/>`;
    o.series.forEach((se, k) => {
      const y = top + 20 + 16 * k;
      const color = esc(se.color ?? PALETTE[k % PALETTE.length]);
      s += `<line x1="${lx + 6}" x2="${lx + 24}" y1="${y - 4}" y2="${y - 4}" stroke="${color}" stroke-width="2"/>`;
      s += `<text x="${lx + 28}" y="${y}" font-size="11">${esc(fit(se.name, lw - 32, 11))}</text>`;
    });
  }
  if (o.xLabel) s += `<text x="${left + pw / 2}" y="${Hh - 10}" text-anchor="middle" font-size="12">${esc(o.xLabel)}</text>`;
  if (o.yLabel)
    s += `<text x="14" y="${top + ph / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 14 ${top + ph / 2})">${esc(fit(o.yLabel, ph, 12))}</text>`;
  return rasterise(s + '</svg>');
}

// ---------------------------------------------------------------------------------------------
// Heatmap overlay

export interface BlendOptions {
  colormap?: ColormapName;
  /** Weight of the colour map over the image (0..1, default 0.5). */
  alpha?: number;
  /** Value range mapped to the colour map ends; default min..max of the map. */
  range?: [number, number];
  caption?: string;
}

export interface HeatmapOptions extends Omit<BlendOptions, 'caption'> {
  colorbar?: boolean;
  title?: string;
}

function mapRange(map: ArrayLike<number>, range?: [number, number]): [number, number] {
  if (range) return range;
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < map.length; i++) {
    const v = map[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/**
 * A map [mh, mw] (any grid, upsampled bilinearly to the image as torch does) blended over an
 * image in a colour map (256-entry table, as matplotlib's) → RGB. Every overlay of a map on an
 * image (heatmaps, segmentations, joint head maps, the toy world's scenes) is drawn by this.
 */
export function blendMap(image: RGBImage, map: ArrayLike<number>, mh: number, mw: number, opts: BlendOptions = {}): RGBImage {
  checkImage(image);
  if (map.length !== mh * mw || mh < 1 || mw < 1) throw new FigureError(`overlay: map has ${map.length} values for shape [${mh}, ${mw}]`);
  const alpha = opts.alpha ?? 0.5;
  if (!(alpha >= 0 && alpha <= 1)) throw new FigureError(`overlay: alpha must be in 0..1, got ${alpha}`);
  const cmap = opts.colormap ?? 'jet';
  const lut: number[][] = Array.from({ length: 256 }, (_, i) => colormap(cmap, i / 255));
  const { width: W, height: H } = image;
  const up = mh === H && mw === W ? map : upsampleBilinear(map, mh, mw, H, W);
  const [lo, hi] = mapRange(map, opts.range);
  const span = hi > lo ? hi - lo : 1;
  const out = new Uint8Array(W * H * 3);
  for (let p = 0; p < W * H; p++) {
    const t = (up[p] - lo) / span;
    const c = lut[Math.round(255 * Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)))];
    for (let ch = 0; ch < 3; ch++) out[p * 3 + ch] = Math.round((1 - alpha) * image.rgb[p * 3 + ch] + alpha * c[ch]);
  }
  return { rgb: out, width: W, height: H, caption: opts.caption };
}

/** A binary mask [h·w] as a black-and-white RGB image. */
export function maskImage(mask: ArrayLike<number>, width: number, height: number, caption?: string): RGBImage {
  const out = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) out.fill(mask[p] ? 255 : 0, p * 3, p * 3 + 3);
  return { rgb: out, width, height, caption };
}

/** blendMap as PNG, optionally with a title and a colour bar. */
export async function heatmapOverlay(image: RGBImage, map: Map2D, opts: HeatmapOptions = {}): Promise<Buffer> {
  if (map.shape.length !== 2) throw new FigureError(`heatmapOverlay: map must be 2-D [h, w], got [${map.shape.join(', ')}]`);
  const [mh, mw] = map.shape;
  const cmap = opts.colormap ?? 'jet';
  const [lo, hi] = mapRange(map.data, opts.range);
  const { width: W, height: H } = image;
  const blended = await encodePng(blendMap(image, map.data, mh, mw, { ...opts, range: [lo, hi] }));
  if (!opts.colorbar && !opts.title) return blended;
  const top = opts.title ? 32 : 8;
  const barW = opts.colorbar ? 80 : 0;
  const TW = W + 16 + barW, TH = H + top + 8;
  let s = svgOpen(TW, TH) + titleSvg(opts.title, TW);
  s += `<image x="8" y="${top}" width="${W}" height="${H}" href="data:image/png;base64,${blended.toString('base64')}"/>`;
  if (opts.colorbar) {
    const bx = W + 16, bh = H;
    s += `<defs><linearGradient id="cb" x1="0" y1="1" x2="0" y2="0">`;
    for (let i = 0; i <= 16; i++) {
      const [r, g, b] = colormap(cmap, i / 16);
      s += `<stop offset="${i / 16}" stop-color="rgb(${r},${g},${b})"/>`;
    }
    s += `</linearGradient></defs><rect x="${bx}" y="${top}" width="16" height="${bh}" fill="url(#cb)" stroke="#000"/>`;
    for (const t of [0, 0.5, 1]) {
      const y = top + bh - t * bh;
      const v = lo + t * (hi - lo);
      s += `<text x="${bx + 20}" y="${y + 4}" font-size="11">${esc(fmt(Math.abs(v) < 1e-6 * Math.abs(hi - lo) ? 0 : v))}</text>`;
    }
  }
  return rasterise(s + '</svg>');
}

// ---------------------------------------------------------------------------------------------
// Image grid

export interface ImageGridOptions {
  /** Cell size the images are fitted into (default: the largest image). */
  cellWidth?: number;
  cellHeight?: number;
  gap?: number;
  title?: string;
}

/** Images in rows of `cols`, each fitted into a cell, captions underneath → PNG. */
export async function imageGrid(images: RGBImage[], cols: number, opts: ImageGridOptions = {}): Promise<Buffer> {
  if (images.length === 0) throw new FigureError('imageGrid: no images');
  if (!Number.isInteger(cols) || cols < 1) throw new FigureError(`imageGrid: cols must be a positive integer, got ${cols}`);
  images.forEach(checkImage);
  const cw = opts.cellWidth ?? Math.max(...images.map((im) => im.width));
  const ch = opts.cellHeight ?? Math.max(...images.map((im) => im.height));
  const gap = opts.gap ?? 8;
  const capH = images.some((im) => im.caption) ? 18 : 0;
  const top = opts.title ? 32 : 0;
  const c = Math.min(cols, images.length), rows = Math.ceil(images.length / cols);
  const W = gap + c * (cw + gap), H = top + gap + rows * (ch + capH + gap);
  const pngs = await Promise.all(images.map(encodePng));
  let s = svgOpen(W, H) + titleSvg(opts.title, W);
  images.forEach((im, i) => {
    const x = gap + (i % cols) * (cw + gap), y = top + gap + Math.floor(i / cols) * (ch + capH + gap);
    const sc = Math.min(cw / im.width, ch / im.height);
    const w = im.width * sc, h = im.height * sc;
    s += `<image x="${x + (cw - w) / 2}" y="${y + (ch - h) / 2}" width="${w}" height="${h}" preserveAspectRatio="none" href="data:image/png;base64,${pngs[i].toString('base64')}"/>`;
    if (im.caption) s += `<text x="${x + cw / 2}" y="${y + ch + 13}" text-anchor="middle" font-size="12">${esc(fit(im.caption, cw, 12))}</text>`;
  });
  return rasterise(s + '</svg>');
}

/** PNGs side by side on white, 8 px apart, top-aligned → PNG. */
export async function sideBySide(pngs: Buffer[]): Promise<Buffer> {
  const metas = await Promise.all(pngs.map((p) => sharp(p).metadata()));
  const gap = 8;
  const width = metas.reduce((a, m) => a + (m.width ?? 0), 0) + gap * (pngs.length - 1);
  const height = Math.max(...metas.map((m) => m.height ?? 0));
  let x = 0;
  const composite = pngs.map((input, i) => {
    const c = { input, left: x, top: 0 };
    x += (metas[i].width ?? 0) + gap;
    return c;
  });
  return sharp({ create: { width, height, channels: 3, background: '#ffffff' } }).composite(composite).png().toBuffer();
}

// ---------------------------------------------------------------------------------------------
// Tables

/** A markdown table; numbers are printed with `digits` significant digits. */
export function table(headers: string[], rows: (string | number)[][], digits = 4): string {
  if (headers.length === 0) throw new FigureError('table: no columns');
  for (const [i, r] of rows.entries())
    if (r.length !== headers.length) throw new FigureError(`table: row ${i} has ${r.length} cells for ${headers.length} columns`);
  const cell = (v: string | number) =>
    (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(digits)))) : v)
      .replace(/\|/g, '\\|')
      .replace(/\r?\n/g, ' ');
  const numeric = headers.map((_, j) => rows.length > 0 && rows.every((r) => typeof r[j] === 'number'));
  const lines = [
    `| ${headers.map(cell).join(' | ')} |`,
    `| ${numeric.map((n) => (n ? '---:' : '---')).join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ];
  return lines.join('\n') + '\n';
}
