// Browser helpers: DOM building, API calls, spinners, colour maps, small SVG charts.

import { pct } from '../notation.ts';

export interface Info {
  model: {
    name: string; L: number; H: number; d: number; grid: number; N: number; imageSize: number;
    /** 'clip' or 'siglip'; SigLIP's one attention block is its pooling head, its `mlp` slots are [out_proj bias, pooling MLP]. */
    family: string; familyLabel: string; clsToken: boolean; blockNames: string[]; chartLabels: string[];
  };
  store: null | { n: number; layers: number[]; labels: string[]; groups: string[]; classes: string[]; hasImages: boolean; template: string };
  textspan: null | { heads: number };
  neurons: null | { layer: number; neurons: number; descriptions: boolean; store: null | { images: number; hasImages: boolean } };
  maxUpload: number;
  maxTexts: number;
}

export interface StoreItem {
  row: number;
  id: string;
  label: string | null;
  group: string | null;
  score?: number;
}

type Child = Node | string | number | null | undefined | false;

type TagOf<S extends string> = S extends `${infer T}.${string}` ? TagOf<T> : S extends `${infer T}#${string}` ? T : S;
type ElementOf<S extends string> = TagOf<S> extends keyof HTMLElementTagNameMap ? HTMLElementTagNameMap[TagOf<S>] : HTMLElement;

/** el('div.card#x', { onclick }, children…), typed by its tag. */
export function el<S extends string>(spec: S, attrs: Record<string, unknown> = {}, ...children: (Child | Child[])[]): ElementOf<S> {
  const m = /^([a-z0-9]+)((?:[.#][\w-]+)*)$/i.exec(spec);
  if (!m) throw new Error(`bad element spec ${spec}`);
  const e = document.createElement(m[1]) as ElementOf<S>;
  for (const part of m[2].match(/[.#][\w-]+/g) ?? []) {
    if (part[0] === '.') e.classList.add(part.slice(1));
    else e.id = part.slice(1);
  }
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v as EventListener);
    else if (k === 'style' && typeof v === 'object') Object.assign(e.style, v);
    else if (k in e && typeof v !== 'string') (e as unknown as Record<string, unknown>)[k] = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : String(c));
  return e;
}

export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export async function api<T>(path: string, body?: unknown, init: RequestInit = {}): Promise<T> {
  // Every POST carries X-Cliplens: 1; the server refuses POSTs without it (pages on other sites cannot add it).
  const headers = { 'content-type': body instanceof Blob ? body.type || 'application/octet-stream' : 'application/json', 'x-cliplens': '1' };
  const opts: RequestInit = body === undefined ? init : { method: 'POST', headers, body: body instanceof Blob ? body : JSON.stringify(body), ...init };
  const r = await fetch(path, opts);
  const text = await r.text();
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    throw new ApiError(r.status, `${path}: HTTP ${r.status} (not JSON)`);
  }
  if (!r.ok) throw new ApiError(r.status, (j as { error?: string }).error ?? `HTTP ${r.status}`);
  return j as T;
}

let toastTimer: number | undefined;
export function toast(msg: string, error = true): void {
  const t = document.getElementById('toast')!;
  t.textContent = msg;
  t.className = error ? 'toast error' : 'toast';
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = window.setTimeout(() => (t.hidden = true), 6000);
}

/** Show a spinner over `host` while `p` runs; errors become a toast and are re-thrown. */
export async function busy<T>(host: HTMLElement, label: string, p: Promise<T>): Promise<T> {
  const veil = el('div.spinner-veil', { 'data-busy': '1' }, el('div.spinner'), label);
  host.append(veil);
  try {
    return await p;
  } catch (e) {
    toast((e as Error).message);
    throw e;
  } finally {
    veil.remove();
  }
}

/** Run only the latest call: earlier results that arrive late are dropped. */
export function latest<A extends unknown[], T>(f: (...a: A) => Promise<T>): (...a: A) => Promise<T | undefined> {
  let seq = 0;
  return async (...a: A) => {
    const mine = ++seq;
    const r = await f(...a);
    return mine === seq ? r : undefined;
  };
}

export function debounce<A extends unknown[]>(f: (...a: A) => void, ms: number): (...a: A) => void {
  let t: number | undefined;
  return (...a: A) => {
    clearTimeout(t);
    t = window.setTimeout(() => f(...a), ms);
  };
}

export function options(select: HTMLSelectElement, items: [string, string][], value?: string): void {
  select.replaceChildren(...items.map(([v, label]) => el('option', { value: v }, label)));
  if (value !== undefined && items.some(([v]) => v === value)) select.value = value;
}

export const fmt = (x: number, digits = 3) =>
  x === 0 ? '0' : Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) < 10 ** -digits ? x.toExponential(1) : x.toFixed(digits);
export const pctLabel = (x: number) => `${pct(x, 1).toFixed(1)}%`;

export function thumb(item: StoreItem, hasImages: boolean, caption?: string): HTMLElement {
  const img = hasImages ? el('img', { src: `/api/store/thumb/${item.row}?size=208`, alt: item.id, loading: 'lazy', title: item.id }) : el('div.ph', { title: item.id });
  return el('div.thumb', { 'data-row': item.row }, img, el('span.lab', { title: item.id }, item.label ?? item.id), caption ? el('span', {}, caption) : null);
}

// ---------------------------------------------------------------- colour maps

const TURBO: [number, number, number][] = [
  [48, 18, 59], [70, 107, 227], [40, 188, 235], [50, 241, 152], [164, 252, 60], [238, 207, 58], [251, 128, 34], [208, 47, 5], [122, 4, 3],
];

function ramp(stops: [number, number, number][], t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const a = stops[i];
  const b = stops[i + 1];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

/** Sequential map for one text's heatmap (t in 0..1). */
export const seqColor = (t: number) => ramp(TURBO, t);

/** Diverging map for differences (t in −1..1): blue, white, red. */
export function divColor(t: number): [number, number, number] {
  return ramp([[33, 102, 172], [103, 169, 207], [209, 229, 240], [247, 247, 247], [253, 219, 199], [239, 138, 98], [178, 24, 43]], (t + 1) / 2);
}

export const css = ([r, g, b]: [number, number, number]) => `rgb(${r | 0},${g | 0},${b | 0})`;

/**
 * The image on the canvas with a grid×grid map (row-major) blended over it, smoothly upsampled;
 * sequential colours over min..max, or diverging around 0. Returns the colour range.
 */
export function drawMapOverlay(canvas: HTMLCanvasElement, img: CanvasImageSource, values: number[], grid: number, o: { diverging?: boolean; alpha: number }): { lo: number; hi: number } {
  const ctx = canvas.getContext('2d')!;
  ctx.globalAlpha = 1;
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (o.diverging) {
    hi = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    lo = -hi;
  }
  const span = hi - lo || 1;
  const small = document.createElement('canvas');
  small.width = small.height = grid;
  const sctx = small.getContext('2d')!;
  const px = sctx.createImageData(grid, grid);
  values.forEach((v, i) => {
    const c = o.diverging ? divColor(v / hi) : seqColor((v - lo) / span);
    px.data.set([c[0], c[1], c[2], 255], i * 4);
  });
  sctx.putImageData(px, 0, 0);
  ctx.globalAlpha = o.alpha;
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
  ctx.globalAlpha = 1;
  return { lo, hi };
}

// ---------------------------------------------------------------- SVG charts

const SVG = 'http://www.w3.org/2000/svg';
function s<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, ...kids: (SVGElement | string)[]): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  for (const k of kids) e.append(k);
  return e;
}

function ticks(lo: number, hi: number, n = 6): number[] {
  const span = hi - lo || 1;
  const step0 = span / n;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= step0) ?? 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

export interface BarSeries {
  name: string;
  color: string;
  values: (number | null)[];
}

/** Grouped bars, one group per category; negative values hang below the zero line. */
export function barChart(categories: string[], series: BarSeries[], o: { width?: number; height?: number; yLabel?: string } = {}): SVGSVGElement {
  const W = o.width ?? 640;
  const Hh = o.height ?? 220;
  const m = { l: 48, r: 10, t: 10, b: 34 };
  const all = series.flatMap((x) => x.values.filter((v): v is number => v !== null));
  let lo = Math.min(0, ...all);
  let hi = Math.max(0, ...all);
  if (hi === lo) hi = lo + 1;
  const pad = (hi - lo) * 0.05;
  hi += hi > 0 ? pad : 0;
  lo -= lo < 0 ? pad : 0;
  const y = (v: number) => m.t + ((hi - v) / (hi - lo)) * (Hh - m.t - m.b);
  const gw = (W - m.l - m.r) / categories.length;
  const bw = Math.min(22, (gw * 0.8) / series.length);
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${Hh}`, width: '100%', role: 'img' });
  for (const t of ticks(lo, hi)) {
    svg.append(s('line', { class: 'grid', x1: m.l, x2: W - m.r, y1: y(t), y2: y(t) }));
    svg.append(s('text', { x: m.l - 6, y: y(t) + 3.5, 'text-anchor': 'end' }, fmt(t, 2)));
  }
  categories.forEach((c, i) => {
    const gx = m.l + i * gw + (gw - bw * series.length) / 2;
    series.forEach((se, j) => {
      const v = se.values[i];
      if (v === null) return;
      const y0 = y(Math.max(0, v));
      const h = Math.max(1, Math.abs(y(v) - y(0)));
      const r = s('rect', { x: gx + j * bw, y: y0, width: bw - 1.5, height: h, fill: se.color, rx: 1.5 }, s('title', {}, `${se.name} ${c}: ${fmt(v, 4)}`));
      svg.append(r);
    });
    svg.append(s('text', { x: m.l + i * gw + gw / 2, y: Hh - m.b + 15, 'text-anchor': 'middle' }, c));
  });
  svg.append(s('line', { class: 'axis', x1: m.l, x2: W - m.r, y1: y(0), y2: y(0) }));
  if (o.yLabel) svg.append(s('text', { x: 12, y: m.t + (Hh - m.t - m.b) / 2, transform: `rotate(-90 12 ${m.t + (Hh - m.t - m.b) / 2})`, 'text-anchor': 'middle' }, o.yLabel));
  return svg;
}

export function legend(series: { name: string; color: string }[]): HTMLElement {
  return el('div.legend', {}, ...series.map((x) => el('span', {}, el('i', { style: { background: x.color } }), x.name)));
}
