// Scene renderer: a textured background and one to three objects of one kind, whose
// attributes are drawn independently (or with one pair correlated on request).

import { ATTRIBUTES, FAMILIES, sampleCaption, type Labels } from './captions.ts';
import { mixSeed, mulberry32, pick, randInt, uniform, type Rng } from './rng.ts';
import { ToyworldError } from '../errors.ts';

export interface Scene {
  image: Uint8Array; // [S, S, 3] RGB
  mask: Uint8Array; // [S, S], 1 on the main object(s)
  size: number;
  labels: Record<string, string>;
  caption: string;
}

export interface Correlation {
  /** Family whose value is drawn freely. */
  a: string;
  /** Family that follows `a`: with probability p it takes the partner of a's value. */
  b: string;
  p: number;
}

export interface SceneOptions {
  size?: number;
  correlate?: Correlation;
}

/** Base RGB of each named colour; a scene jitters it by at most COLOR_JITTER per channel. */
export const COLOR_RGB: Record<string, [number, number, number]> = {
  red: [220, 30, 30],
  orange: [245, 135, 15],
  yellow: [240, 225, 30],
  green: [30, 165, 55],
  blue: [35, 75, 225],
  purple: [135, 45, 190],
  pink: [250, 125, 195],
};
export const COLOR_JITTER = 12;

/** Low-saturation background tones, so that a background is never mistaken for an object colour. */
const BG_TONES: [number, number, number][] = [
  [200, 200, 200],
  [150, 150, 150],
  [95, 95, 95],
  [205, 195, 170],
  [110, 115, 130],
  [170, 160, 145],
];

/** Value of `b` paired with value index i of `a` (Waterbirds-style: each shape has "its" background). */
export function partnerValue(a: string, b: string, aValue: string): string {
  const i = ATTRIBUTES[a].indexOf(aValue);
  const bs = ATTRIBUTES[b];
  return bs[i % bs.length];
}

function checkOptions(opts: SceneOptions): number {
  const size = opts.size ?? 64;
  if (!Number.isSafeInteger(size) || size < 48 || size > 512) throw new ToyworldError(`scene size must be an integer in [48, 512], got ${size}`);
  const c = opts.correlate;
  if (c) {
    if (!ATTRIBUTES[c.a]) throw new ToyworldError(`correlate.a: unknown attribute family '${c.a}' (known: ${FAMILIES.join(', ')})`);
    if (!ATTRIBUTES[c.b]) throw new ToyworldError(`correlate.b: unknown attribute family '${c.b}' (known: ${FAMILIES.join(', ')})`);
    if (c.a === c.b) throw new ToyworldError(`correlate.a and correlate.b must differ, both are '${c.a}'`);
    if (!(c.p >= 0 && c.p <= 1)) throw new ToyworldError(`correlate.p must be in [0, 1], got ${c.p}`);
  }
  return size;
}

function drawLabels(rng: Rng, corr?: Correlation): Labels {
  const labels: Labels = {};
  for (const fam of FAMILIES) labels[fam] = pick(rng, ATTRIBUTES[fam]);
  if (corr) {
    const partner = partnerValue(corr.a, corr.b, labels[corr.a]);
    // Exactly rate p of matched pairs: otherwise one of the other values, uniformly.
    if (rng() < corr.p) labels[corr.b] = partner;
    else labels[corr.b] = pick(rng, ATTRIBUTES[corr.b].filter((v) => v !== partner));
  }
  return labels;
}

function insideShape(shape: string, dx: number, dy: number, r: number): boolean {
  switch (shape) {
    case 'circle':
      return dx * dx + dy * dy <= r * r;
    case 'square': {
      const h = r * 0.85;
      return Math.abs(dx) <= h && Math.abs(dy) <= h;
    }
    case 'triangle': {
      // Upward triangle, apex at -r, base at +0.8r, base half-width 1.05r.
      if (dy < -r || dy > 0.8 * r) return false;
      return Math.abs(dx) <= ((dy + r) / (1.8 * r)) * 1.05 * r;
    }
    case 'cross': {
      const t = r * 0.36;
      return (Math.abs(dx) <= r && Math.abs(dy) <= t) || (Math.abs(dy) <= r && Math.abs(dx) <= t);
    }
    default:
      throw new ToyworldError(`unknown shape '${shape}'`);
  }
}

function paintBackground(img: Uint8Array, S: number, kind: string, rng: Rng): void {
  const base = pick(rng, BG_TONES);
  let delta = (rng() < 0.5 ? -1 : 1) * randInt(rng, 40, 60);
  // One sign for all channels so the second tone stays grey-ish.
  if (Math.max(...base) + delta > 255 || Math.min(...base) + delta < 0) delta = -delta;
  const alt = base.map((c) => c + delta) as [number, number, number];
  const scale = S / 64;
  let test: (x: number, y: number) => boolean;
  if (kind === 'plain') test = () => false;
  else if (kind === 'striped') {
    const period = Math.round(randInt(rng, 6, 11) * scale);
    const orient = randInt(rng, 0, 3);
    const off = randInt(rng, 0, period);
    test = (x, y) => {
      const u = orient === 0 ? y : orient === 1 ? x : x + y;
      return (u + off) % period < period / 2;
    };
  } else if (kind === 'dotted') {
    const period = Math.round(randInt(rng, 7, 11) * scale);
    const rad = uniform(rng, 1.3, 2.1) * scale;
    const ox = randInt(rng, 0, period);
    const oy = randInt(rng, 0, period);
    const c = (period - 1) / 2;
    test = (x, y) => {
      const dx = ((x + ox) % period) - c;
      const dy = ((y + oy) % period) - c;
      return dx * dx + dy * dy <= rad * rad;
    };
  } else if (kind === 'checkered') {
    const cell = Math.round(randInt(rng, 4, 9) * scale);
    const ox = randInt(rng, 0, cell);
    const oy = randInt(rng, 0, cell);
    test = (x, y) => ((Math.floor((x + ox) / cell) + Math.floor((y + oy) / cell)) & 1) === 1;
  } else throw new ToyworldError(`unknown background '${kind}'`);
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const c = test(x, y) ? alt : base;
      const o = (y * S + x) * 3;
      img[o] = c[0];
      img[o + 1] = c[1];
      img[o + 2] = c[2];
    }
  }
}

/**
 * Centres along the group's axis: k objects of radius r, at least 1 px apart, group centred
 * near the middle so that "left" never reads as "top-left". Centres sit on a half-patch grid
 * (multiples of S/16): a ViT then sees each shape in few patch alignments, which it learns
 * from far less data than arbitrary sub-patch offsets.
 */
function alongAxis(rng: Rng, k: number, r: number, S: number, unit: number): number[] {
  const lo = r + 1;
  const hi = S - r - 1;
  const minGap = 2 * 1.05 * r + 1; // the triangle is 1.05 r wide
  const mid = S / 2;
  const band = k === 1 ? S * 0.16 : S * 0.1;
  for (let tries = 0; tries < 200; tries++) {
    const cs = Array.from({ length: k }, () => Math.round(uniform(rng, lo, hi) / unit) * unit).sort((a, b) => a - b);
    let ok = cs[0] >= lo && cs[k - 1] <= hi;
    for (let i = 1; i < k; i++) if (cs[i] - cs[i - 1] < minGap) ok = false;
    const mean = cs.reduce((a, b) => a + b, 0) / k;
    if (ok && Math.abs(mean - mid) <= band) return cs;
  }
  const step = Math.ceil(minGap / unit) * unit;
  return Array.from({ length: k }, (_, i) => mid + (i - (k - 1) / 2) * step);
}

function renderScene(rng: Rng, S: number, labels: Labels): { image: Uint8Array; mask: Uint8Array } {
  const image = new Uint8Array(S * S * 3);
  const mask = new Uint8Array(S * S);
  paintBackground(image, S, labels.background, rng);
  const scale = S / 64;
  const r = (labels.size === 'small' ? pick(rng, [4.5, 5]) : pick(rng, [8.25, 8.75])) * scale;
  const unit = S / 16;
  const k = { one: 1, two: 2, three: 3 }[labels.count as 'one' | 'two' | 'three'];
  const base = COLOR_RGB[labels.color];
  const rgb = base.map((c) => Math.max(0, Math.min(255, c + randInt(rng, -COLOR_JITTER, COLOR_JITTER + 1))));
  const along = alongAxis(rng, k, r, S, unit);
  // The object's centre stays inside the outer third on the cross axis.
  const laneHi = 0.34 * S;
  const vertical = labels.position === 'left' || labels.position === 'right';
  for (const a of along) {
    const cLo = Math.ceil((r + 1) / unit) * unit;
    let cross = cLo + randInt(rng, 0, Math.max(0, Math.floor((laneHi - cLo) / unit)) + 1) * unit;
    if (labels.position === 'right' || labels.position === 'bottom') cross = S - cross;
    const cx = vertical ? cross : a;
    const cy = vertical ? a : cross;
    const x0 = Math.max(0, Math.floor(cx - r - 1));
    const x1 = Math.min(S - 1, Math.ceil(cx + r + 1));
    const y0 = Math.max(0, Math.floor(cy - r - 1));
    const y1 = Math.min(S - 1, Math.ceil(cy + r + 1));
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        if (!insideShape(labels.shape, x + 0.5 - cx, y + 0.5 - cy, r)) continue;
        const p = y * S + x;
        mask[p] = 1;
        image[p * 3] = rgb[0];
        image[p * 3 + 1] = rgb[1];
        image[p * 3 + 2] = rgb[2];
      }
    }
  }
  return { image, mask };
}

/** One scene, a pure function of (seed, opts). The caption names every attribute. */
export function generateScene(seed: number, opts: SceneOptions = {}): Scene {
  if (!Number.isSafeInteger(seed)) throw new ToyworldError(`scene seed must be an integer, got ${seed}`);
  const S = checkOptions(opts);
  const rng = mulberry32(mixSeed(seed, 0x5ce9e));
  const labels = drawLabels(rng, opts.correlate);
  const { image, mask } = renderScene(rng, S, labels);
  const caption = sampleCaption(labels, mulberry32(mixSeed(seed, 0xca9)), 1).caption;
  return { image, mask, size: S, labels, caption };
}

/** Seed of scene i of a split, so that splits with different seeds do not share scenes. */
export function sceneSeed(splitSeed: number, i: number): number {
  return mixSeed(mixSeed(splitSeed, 0x7011), i);
}

export function generateScenes(n: number, seed: number, opts: SceneOptions = {}): Scene[] {
  if (!Number.isSafeInteger(n) || n < 0) throw new ToyworldError(`number of scenes must be a non-negative integer, got ${n}`);
  checkOptions(opts);
  return Array.from({ length: n }, (_, i) => generateScene(sceneSeed(seed, i), opts));
}
