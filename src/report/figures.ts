// Figures for reports: charts drawn as SVG and rasterised by sharp (librsvg), heatmap overlays
// and image grids composed from raw RGB, markdown tables. Every figure function returns a PNG.

import sharp from 'sharp';
import { upsampleBilinear } from '../io/resample.ts';
import { FigureError } from '../errors.ts';
import { FIGURE_FONT, textWidth, wrapText } from './text_metrics.ts';

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

/** Model inputs smaller than this (e.g. 32- or 64-px models) are drawn upscaled to at least this many px. */
export const MIN_DRAWN_PX = 224;

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
// Helpers. Every label is drawn whole: long text wraps (titles, captions, legends) and a figure
// grows (wider for many bars, taller for long rotated labels) rather than cutting anything.

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

interface TextOptions {
  anchor?: 'start' | 'middle' | 'end';
  bold?: boolean;
  /** Degrees, about (x, y). */
  rotate?: number;
}

/** One line of text: one <text> element. */
function svgText(str: string, x: number, y: number, size: number, o: TextOptions = {}): string {
  const r = (v: number) => Number(v.toFixed(2));
  const attrs = [`x="${r(x)}"`, `y="${r(y)}"`, `font-size="${size}"`];
  if (o.anchor && o.anchor !== 'start') attrs.push(`text-anchor="${o.anchor}"`);
  if (o.bold) attrs.push('font-weight="bold"');
  if (o.rotate) attrs.push(`transform="rotate(${o.rotate} ${r(x)} ${r(y)})"`);
  return `<text ${attrs.join(' ')}>${esc(str)}</text>`;
}

/** Lines stacked from the baseline y0, `lineHeight` apart. */
function svgLines(lines: string[], x: number, y0: number, size: number, lineHeight: number, o: TextOptions = {}): string {
  return lines.map((l, i) => svgText(l, x, y0 + i * lineHeight, size, o)).join('');
}

const TITLE_SIZE = 16;
const TITLE_LINE = 20;

/** The title wrapped to the figure's width, and how much height it takes (0 without a title). */
function titleBlock(title: string | undefined, W: number): { svg: string; height: number } {
  if (!title) return { svg: '', height: 0 };
  const lines = wrapText(title, W - 16, TITLE_SIZE, true);
  return { svg: svgLines(lines, W / 2, 22, TITLE_SIZE, TITLE_LINE, { anchor: 'middle', bold: true }), height: 28 + (lines.length - 1) * TITLE_LINE };
}

export function fmt(v: number): string {
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

/** Ticks within [lo, hi] whose labels (11 px) do not run into each other over `px` pixels. */
function spacedTicks(lo: number, hi: number, px: number, count: number): number[] {
  for (let c = count; c >= 1; c--) {
    const t = niceTicks(lo, hi, c).filter((v) => v >= lo - 1e-12 && v <= hi + 1e-12);
    if (t.length < 2) return t;
    const gap = (px * (t[1] - t[0])) / (hi - lo || 1);
    if (Math.max(...t.map((v) => textWidth(fmt(v), 11))) + 8 <= gap) return t;
  }
  return [lo, hi];
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

/** Each pixel repeated k×k times (small images stay crisp when drawn large). */
export function upscaleNearest(img: RGBImage, k: number): RGBImage {
  if (k <= 1) return img;
  const W = img.width * k, H = img.height * k;
  const out = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) {
    const sy = Math.floor(y / k);
    for (let x = 0; x < W; x++) {
      const s = (sy * img.width + Math.floor(x / k)) * 3, o = (y * W + x) * 3;
      out[o] = img.rgb[s];
      out[o + 1] = img.rgb[s + 1];
      out[o + 2] = img.rgb[s + 2];
    }
  }
  return { rgb: out, width: W, height: H, caption: img.caption };
}

/** Integer factor that draws a w×h input at least MIN_DRAWN_PX on its longer side. */
export function drawScale(w: number, h: number): number {
  return Math.max(1, Math.ceil(MIN_DRAWN_PX / Math.max(w, h)));
}

function svgOpen(w: number, h: number): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${Math.ceil(w)}" height="${Math.ceil(h)}" viewBox="0 0 ${Math.ceil(w)} ${Math.ceil(h)}" ` +
    `font-family="${FIGURE_FONT}"><rect width="${Math.ceil(w)}" height="${Math.ceil(h)}" fill="#ffffff"/>`
  );
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
  /** At least this wide (default 640); wider when the bars' labels need the room. */
  width?: number;
  /** At least this tall (default 400); taller when rotated labels need the room. */
  height?: number;
  /** One colour for all bars, or one per bar. */
  color?: string | string[];
  /** Print each value above its bar. */
  valueLabels?: boolean;
  yMin?: number;
  yMax?: number;
}

const SIN45 = Math.SQRT1_2;
/** Rotated labels 11 px high need bars this far apart not to touch (11·1.2 / sin 45°). */
const ROTATED_SLOT = 19;

export function barChartSvg(o: BarChartOptions): string {
  if (o.labels.length !== o.values.length)
    throw new FigureError(`barChart: ${o.labels.length} labels for ${o.values.length} values`);
  if (o.values.length === 0) throw new FigureError('barChart: no values');
  const n = o.values.length;
  const finite = o.values.filter(Number.isFinite);
  const lo = o.yMin ?? Math.min(0, ...finite);
  const hi = o.yMax ?? Math.max(0, ...finite, lo + 1e-12);
  const all = niceTicks(lo, hi, 5);
  const y0v = o.yMin ?? all[0], y1v = o.yMax ?? all[all.length - 1];
  const ticks = all.filter((t) => t >= y0v - 1e-12 && t <= y1v + 1e-12);
  const labelW = o.labels.map((l) => textWidth(l, 11));
  const maxLabel = Math.max(...labelW);
  const valueW = o.valueLabels ? Math.max(...o.values.map((v) => (Number.isFinite(v) ? textWidth(fmt(v), 10) : 0))) + 4 : 0;
  const tickW = Math.max(...ticks.map((t) => textWidth(fmt(t), 11)));
  const right = 16;
  let left = Math.ceil(tickW + 12 + (o.yLabel ? 22 : 0));
  let W = o.width ?? 640;
  const rotate = maxLabel + 6 > (W - left - right) / n;
  const minSlot = Math.max(rotate ? ROTATED_SLOT : maxLabel + 6, valueW);
  W = Math.max(W, left + right + n * minSlot);
  let slot = (W - left - right) / n;
  if (rotate) {
    // A label anchored at its bar's centre runs down-left at 45°: keep the first ones on the canvas.
    const need = Math.max(...labelW.map((w, i) => (w + 11) * SIN45 - (i + 0.5) * slot + 4));
    if (need > left) {
      W += need - left;
      left = Math.ceil(need);
      slot = (W - left - right) / n;
    }
  }
  const bottom = Math.ceil(rotate ? maxLabel * SIN45 + 11 + 16 : 32);
  const title = titleBlock(o.title, W);
  const top = Math.max(16, title.height + (o.valueLabels ? 16 : 8));
  let Hh = Math.max(o.height ?? 400, top + bottom + 120);
  if (o.yLabel) Hh = Math.max(Hh, top + bottom + textWidth(o.yLabel, 12) + 8);
  const pw = W - left - right, ph = Hh - top - bottom;
  const Y = (v: number) => top + ph - ((Math.min(y1v, Math.max(y0v, v)) - y0v) / (y1v - y0v || 1)) * ph;
  let s = svgOpen(W, Hh) + title.svg;
  for (const t of ticks) {
    const y = Y(t);
    s += `<line x1="${left}" x2="${left + pw}" y1="${y}" y2="${y}" stroke="#e0e0e0"/>`;
    s += svgText(fmt(t), left - 6, y + 4, 11, { anchor: 'end' });
  }
  const bw = Math.max(1, slot * 0.75);
  o.values.forEach((v, i) => {
    const x = left + i * slot + (slot - bw) / 2;
    const color = Array.isArray(o.color) ? o.color[i % o.color.length] : (o.color ?? PALETTE[0]);
    if (Number.isFinite(v)) {
      const ya = Y(Math.max(v, 0)), yb = Y(Math.min(v, 0));
      s += `<rect x="${x}" y="${ya}" width="${bw}" height="${Math.max(0.5, yb - ya)}" fill="${esc(color)}"/>`;
      if (o.valueLabels) s += svgText(fmt(v), x + bw / 2, v >= 0 ? ya - 3 : yb + 12, 10, { anchor: 'middle' });
    }
    const cx = left + i * slot + slot / 2, ly = top + ph + 14;
    s += rotate ? svgText(o.labels[i], cx, ly, 11, { anchor: 'end', rotate: -45 }) : svgText(o.labels[i], cx, ly, 11, { anchor: 'middle' });
  });
  const axisY = Y(0 >= y0v && 0 <= y1v ? 0 : y0v);
  s += `<line x1="${left}" x2="${left + pw}" y1="${axisY}" y2="${axisY}" stroke="#000"/>`;
  s += `<line x1="${left}" x2="${left}" y1="${top}" y2="${top + ph}" stroke="#000"/>`;
  if (o.yLabel) s += svgText(o.yLabel, 14, top + ph / 2, 12, { anchor: 'middle', rotate: -90 });
  return s + '</svg>';
}

export async function barChart(o: BarChartOptions): Promise<Buffer> {
  return rasterise(barChartSvg(o));
}

// ---------------------------------------------------------------------------------------------
// Grouped horizontal bar chart: many groups (e.g. 48 label × group cells), a few series each.

export interface GroupedBarChartOptions {
  title?: string;
  /** One row per group, labelled on the left. */
  groups: string[];
  /** Bars within each group, in this order, with a legend. */
  series: { name: string; values: number[]; color?: string }[];
  xLabel?: string;
  xMin?: number;
  xMax?: number;
  /** At least this wide (default 720). */
  width?: number;
}

export function groupedBarChartSvg(o: GroupedBarChartOptions): string {
  if (!o.groups.length) throw new FigureError('groupedBarChart: no groups');
  if (!o.series.length) throw new FigureError('groupedBarChart: no series');
  for (const se of o.series)
    if (se.values.length !== o.groups.length) throw new FigureError(`groupedBarChart: series '${se.name}' has ${se.values.length} values for ${o.groups.length} groups`);
  const W = o.width ?? 720;
  const labelMax = Math.min(260, Math.max(...o.groups.map((g) => textWidth(g, 11))));
  const groupLines = o.groups.map((g) => wrapText(g, labelMax, 11));
  const left = Math.ceil(labelMax + 14), right = 24;
  const pw = W - left - right;
  if (pw < 120) throw new FigureError(`groupedBarChart: ${W} px is too narrow`);
  const title = titleBlock(o.title, W);
  // Legend: entries side by side, wrapping onto more rows.
  let legend = '';
  let lx = left, ly = title.height + 18;
  o.series.forEach((se, k) => {
    const w = 18 + textWidth(se.name, 11) + 16;
    if (lx + w > W - 8 && lx > left) {
      lx = left;
      ly += 16;
    }
    legend += `<rect x="${lx}" y="${ly - 9}" width="12" height="10" fill="${esc(se.color ?? PALETTE[k % PALETTE.length])}"/>` + svgText(se.name, lx + 16, ly, 11);
    lx += w;
  });
  const top = ly + 14;
  const barH = 7;
  const rowH = groupLines.map((ls) => Math.max(o.series.length * barH + 8, ls.length * 13 + 6));
  const ph = rowH.reduce((a, b) => a + b, 0);
  const values = o.series.flatMap((se) => se.values.filter(Number.isFinite));
  const xlo = o.xMin ?? Math.min(0, ...values), xhi = o.xMax ?? Math.max(xlo + 1e-12, ...values);
  const ticks = spacedTicks(xlo, xhi, pw, 6);
  const X = (v: number) => left + ((Math.min(xhi, Math.max(xlo, v)) - xlo) / (xhi - xlo || 1)) * pw;
  const Hh = top + ph + 30 + (o.xLabel ? 20 : 0);
  let s = svgOpen(W, Hh) + title.svg + legend;
  for (const t of ticks) {
    s += `<line x1="${X(t)}" x2="${X(t)}" y1="${top}" y2="${top + ph}" stroke="#e0e0e0"/>`;
    s += svgText(fmt(t), X(t), top + ph + 15, 11, { anchor: 'middle' });
  }
  let y = top;
  o.groups.forEach((_, i) => {
    const lines = groupLines[i];
    const mid = y + rowH[i] / 2;
    s += svgLines(lines, left - 8, mid - ((lines.length - 1) * 13) / 2 + 4, 11, 13, { anchor: 'end' });
    const y0 = mid - (o.series.length * barH) / 2;
    o.series.forEach((se, k) => {
      const v = se.values[i];
      if (!Number.isFinite(v)) return;
      const a = X(Math.min(0, v)), b = X(Math.max(0, v));
      s += `<rect x="${a}" y="${y0 + k * barH}" width="${Math.max(0.5, b - a)}" height="${barH - 1}" fill="${esc(se.color ?? PALETTE[k % PALETTE.length])}"/>`;
    });
    if (i > 0) s += `<line x1="${left}" x2="${left + pw}" y1="${y}" y2="${y}" stroke="#f0f0f0"/>`;
    y += rowH[i];
  });
  s += `<line x1="${X(Math.max(xlo, Math.min(xhi, 0)))}" x2="${X(Math.max(xlo, Math.min(xhi, 0)))}" y1="${top}" y2="${top + ph}" stroke="#000"/>`;
  s += `<line x1="${left}" x2="${left + pw}" y1="${top + ph}" y2="${top + ph}" stroke="#000"/>`;
  if (o.xLabel) s += svgLines(wrapText(o.xLabel, pw, 12), left + pw / 2, top + ph + 34, 12, 15, { anchor: 'middle' });
  return s + '</svg>';
}

export async function groupedBarChart(o: GroupedBarChartOptions): Promise<Buffer> {
  return rasterise(groupedBarChartSvg(o));
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

export function lineChartSvg(o: LineChartOptions): string {
  if (o.series.length === 0) throw new FigureError('lineChart: no series');
  if (o.x.length === 0) throw new FigureError('lineChart: no x values');
  for (const se of o.series)
    if (se.values.length !== o.x.length)
      throw new FigureError(`lineChart: series '${se.name}' has ${se.values.length} values for ${o.x.length} x positions`);
  const W = o.width ?? 640;
  const ys = o.series.flatMap((se) => se.values.filter(Number.isFinite));
  const xsF = o.x.filter(Number.isFinite);
  const ytAll = niceTicks(o.yMin ?? Math.min(...ys), o.yMax ?? Math.max(...ys), 5);
  const ylo = o.yMin ?? ytAll[0], yhi = o.yMax ?? ytAll[ytAll.length - 1];
  const yt = ytAll.filter((t) => t >= ylo - 1e-12 && t <= yhi + 1e-12);
  const left = Math.ceil(Math.max(...yt.map((t) => textWidth(fmt(t), 11))) + 12 + (o.yLabel ? 22 : 0)), right = 16;
  const pw = W - left - right;
  if (pw < 60) throw new FigureError(`lineChart: ${W} px is too narrow for the plot`);
  const title = titleBlock(o.title, W);
  const top = title.height ? title.height + 8 : 16;
  // Legend inside the plot (top right) when it is narrow, else in rows under the x axis.
  const named = o.series.length > 1 || !!o.series[0].name;
  const legendW = named ? Math.max(...o.series.map((se) => textWidth(se.name, 11))) + 40 : 0;
  const legendInside = named && legendW <= pw / 2;
  const xLabelLines = o.xLabel ? wrapText(o.xLabel, pw, 12) : [];
  const legendBelow = named && !legendInside ? o.series.map((se) => wrapText(se.name, pw - 28, 11)) : [];
  const belowH = legendBelow.reduce((a, ls) => a + ls.length * 14 + 2, 0);
  const bottom = 28 + xLabelLines.length * 15 + (belowH ? belowH + 8 : 0);
  let Hh = Math.max(o.height ?? 400, top + bottom + 120);
  if (o.yLabel) Hh = Math.max(Hh, top + bottom + textWidth(o.yLabel, 12) + 8);
  if (legendInside) Hh = Math.max(Hh, top + bottom + 16 * o.series.length + 40);
  const ph = Hh - top - bottom;
  // x spans the data exactly; ticks inside it.
  const xlo = Math.min(...xsF), xhi = Math.max(...xsF);
  const xt = spacedTicks(xlo, xhi, pw, 6);
  const X = (v: number) => left + ((v - xlo) / (xhi - xlo || 1)) * pw;
  const Y = (v: number) => top + ph - ((v - ylo) / (yhi - ylo || 1)) * ph;
  let s = svgOpen(W, Hh) + title.svg;
  for (const t of yt) {
    s += `<line x1="${left}" x2="${left + pw}" y1="${Y(t)}" y2="${Y(t)}" stroke="#e0e0e0"/>`;
    s += svgText(fmt(t), left - 6, Y(t) + 4, 11, { anchor: 'end' });
  }
  for (const t of xt) s += svgText(fmt(t), X(t), top + ph + 16, 11, { anchor: 'middle' });
  s += `<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#000"/>`;
  const colorOf = (se: LineSeries, k: number) => esc(se.color ?? PALETTE[k % PALETTE.length]);
  o.series.forEach((se, k) => {
    const color = colorOf(se, k);
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
  if (legendInside) {
    const lx = left + pw - legendW - 6;
    s += `<rect x="${lx}" y="${top + 6}" width="${legendW}" height="${8 + 16 * o.series.length}" fill="#ffffff" fill-opacity="0.85" stroke="#999"/>`;
    o.series.forEach((se, k) => {
      const y = top + 20 + 16 * k;
      s += `<line x1="${lx + 6}" x2="${lx + 24}" y1="${y - 4}" y2="${y - 4}" stroke="${colorOf(se, k)}" stroke-width="2"/>`;
      s += svgText(se.name, lx + 28, y, 11);
    });
  }
  let yb = top + ph + 28;
  if (xLabelLines.length) {
    s += svgLines(xLabelLines, left + pw / 2, yb + 4, 12, 15, { anchor: 'middle' });
    yb += xLabelLines.length * 15;
  }
  legendBelow.forEach((lines, k) => {
    const y = yb + 14;
    s += `<line x1="${left}" x2="${left + 18}" y1="${y - 4}" y2="${y - 4}" stroke="${colorOf(o.series[k], k)}" stroke-width="2"/>`;
    s += svgLines(lines, left + 24, y, 11, 14);
    yb += lines.length * 14 + 2;
  });
  if (o.yLabel) s += svgText(o.yLabel, 14, top + ph / 2, 12, { anchor: 'middle', rotate: -90 });
  return s + '</svg>';
}

export async function lineChart(o: LineChartOptions): Promise<Buffer> {
  return rasterise(lineChartSvg(o));
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
  /** Draw at this integer multiple of the image's size (pixels repeated, the map upsampled to match); default 1. */
  scale?: number;
}

export interface HeatmapOptions extends Omit<BlendOptions, 'caption' | 'scale'> {
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
  const base = upscaleNearest(image, opts.scale ?? 1);
  const { width: W, height: H } = base;
  const up = mh === H && mw === W ? map : upsampleBilinear(map, mh, mw, H, W);
  const [lo, hi] = mapRange(map, opts.range);
  const span = hi > lo ? hi - lo : 1;
  const out = new Uint8Array(W * H * 3);
  for (let p = 0; p < W * H; p++) {
    const t = (up[p] - lo) / span;
    const c = lut[Math.round(255 * Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)))];
    for (let ch = 0; ch < 3; ch++) out[p * 3 + ch] = Math.round((1 - alpha) * base.rgb[p * 3 + ch] + alpha * c[ch]);
  }
  return { rgb: out, width: W, height: H, caption: opts.caption };
}

/** A binary mask [h·w] as a black-and-white RGB image. */
export function maskImage(mask: ArrayLike<number>, width: number, height: number, caption?: string): RGBImage {
  const out = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) out.fill(mask[p] ? 255 : 0, p * 3, p * 3 + 3);
  return { rgb: out, width, height, caption };
}

/**
 * blendMap drawn at ≥ MIN_DRAWN_PX (small inputs upscaled), as PNG; with a title or a colour bar
 * also the SVG that frames it.
 */
export async function heatmapOverlaySvg(image: RGBImage, map: Map2D, opts: HeatmapOptions = {}): Promise<{ svg?: string; png: Buffer }> {
  if (map.shape.length !== 2) throw new FigureError(`heatmapOverlay: map must be 2-D [h, w], got [${map.shape.join(', ')}]`);
  checkImage(image);
  const [mh, mw] = map.shape;
  const cmap = opts.colormap ?? 'jet';
  const [lo, hi] = mapRange(map.data, opts.range);
  const blended = blendMap(image, map.data, mh, mw, { ...opts, range: [lo, hi], scale: drawScale(image.width, image.height) });
  const png = await encodePng(blended);
  if (!opts.colorbar && !opts.title) return { png };
  const { width: W, height: H } = blended;
  const tickValues = [0, 0.5, 1].map((t) => {
    const v = lo + t * (hi - lo);
    return fmt(Math.abs(v) < 1e-6 * Math.abs(hi - lo) ? 0 : v);
  });
  const barW = opts.colorbar ? 16 + 6 + Math.max(...tickValues.map((t) => textWidth(t, 11))) + 8 : 0;
  const TW = W + 16 + barW;
  const title = titleBlock(opts.title, TW);
  const top = title.height ? title.height + 4 : 8;
  const TH = H + top + 8;
  let s = svgOpen(TW, TH) + title.svg;
  s += `<image x="8" y="${top}" width="${W}" height="${H}" href="data:image/png;base64,${png.toString('base64')}"/>`;
  if (opts.colorbar) {
    const bx = W + 16, bh = H;
    s += `<defs><linearGradient id="cb" x1="0" y1="1" x2="0" y2="0">`;
    for (let i = 0; i <= 16; i++) {
      const [r, g, b] = colormap(cmap, i / 16);
      s += `<stop offset="${i / 16}" stop-color="rgb(${r},${g},${b})"/>`;
    }
    s += `</linearGradient></defs><rect x="${bx}" y="${top}" width="16" height="${bh}" fill="url(#cb)" stroke="#000"/>`;
    // End labels sit inside the bar's height so they stay on the canvas.
    [0, 0.5, 1].forEach((t, i) => (s += svgText(tickValues[i], bx + 22, top + bh - t * (bh - 12) - 2, 11)));
  }
  return { svg: s + '</svg>', png };
}

/** A map blended over an image → PNG (drawn at ≥ MIN_DRAWN_PX; title and colour bar optional). */
export async function heatmapOverlay(image: RGBImage, map: Map2D, opts: HeatmapOptions = {}): Promise<Buffer> {
  const r = await heatmapOverlaySvg(image, map, opts);
  return r.svg ? rasterise(r.svg) : r.png;
}

// ---------------------------------------------------------------------------------------------
// Image grid

export interface ImageGridOptions {
  /** Cell size the images are fitted into (default: the largest image); scaled up to MIN_DRAWN_PX. */
  cellWidth?: number;
  cellHeight?: number;
  gap?: number;
  title?: string;
  /** A line of text above each row, across its width (rows in order). */
  rowTitles?: string[];
}

/** Images in rows of `cols`, each fitted into a cell (small ones upscaled), captions wrapped underneath and row titles above → SVG. */
export async function imageGridSvg(images: RGBImage[], cols: number, opts: ImageGridOptions = {}): Promise<string> {
  if (images.length === 0) throw new FigureError('imageGrid: no images');
  if (!Number.isInteger(cols) || cols < 1) throw new FigureError(`imageGrid: cols must be a positive integer, got ${cols}`);
  images.forEach(checkImage);
  const cw0 = opts.cellWidth ?? Math.max(...images.map((im) => im.width));
  const ch0 = opts.cellHeight ?? Math.max(...images.map((im) => im.height));
  const k = drawScale(cw0, ch0);
  const cw = cw0 * k, ch = ch0 * k;
  const gap = opts.gap ?? 8;
  const captions = images.map((im) => (im.caption ? wrapText(im.caption, cw, 12) : []));
  const capH = Math.max(...captions.map((c) => c.length)) * 15 + (captions.some((c) => c.length) ? 4 : 0);
  const c = Math.min(cols, images.length), rows = Math.ceil(images.length / cols);
  const W = gap + c * (cw + gap);
  const rowTitles = Array.from({ length: rows }, (_, r) => (opts.rowTitles?.[r] ? wrapText(opts.rowTitles[r], W - 2 * gap, 12, true) : []));
  const rowH = Math.max(0, ...rowTitles.map((t) => t.length)) * 15 + (rowTitles.some((t) => t.length) ? 4 : 0);
  const title = titleBlock(opts.title, W);
  const top = title.height;
  const H = top + gap + rows * (rowH + ch + capH + gap);
  let s = svgOpen(W, H) + title.svg;
  rowTitles.forEach((t, r) => (s += svgLines(t, gap, top + gap + r * (rowH + ch + capH + gap) + 12, 12, 15, { bold: true })));
  for (const [i, im] of images.entries()) {
    const x = gap + (i % cols) * (cw + gap), y = top + gap + Math.floor(i / cols) * (rowH + ch + capH + gap) + rowH;
    const sc = Math.min(cw / im.width, ch / im.height);
    const w = im.width * sc, h = im.height * sc;
    const png = await encodePng(upscaleNearest(im, Math.floor(sc)));
    s += `<image x="${x + (cw - w) / 2}" y="${y + (ch - h) / 2}" width="${w}" height="${h}" preserveAspectRatio="none" href="data:image/png;base64,${png.toString('base64')}"/>`;
    s += svgLines(captions[i], x + cw / 2, y + ch + 14, 12, 15, { anchor: 'middle' });
  }
  return s + '</svg>';
}

export async function imageGrid(images: RGBImage[], cols: number, opts: ImageGridOptions = {}): Promise<Buffer> {
  return rasterise(await imageGridSvg(images, cols, opts));
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
