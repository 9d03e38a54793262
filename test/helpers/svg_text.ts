// Where the text of an SVG figure lands: every <text> element as a (possibly rotated) box, sized
// with the figure's own font metrics, so a test can check that no label runs off the canvas or
// into another one, and that every label is there whole.

import assert from 'node:assert/strict';
import { textWidth } from '../../src/report/text_metrics.ts';

export interface PlacedText {
  text: string;
  corners: [number, number][];
}

const unesc = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&');

export function svgTexts(svg: string): { width: number; height: number; texts: PlacedText[] } {
  const root = /<svg[^>]*\swidth="([\d.]+)"[^>]*\sheight="([\d.]+)"/.exec(svg);
  assert.ok(root, 'no <svg width height>');
  const texts: PlacedText[] = [];
  for (const m of svg.matchAll(/<text ([^>]*)>([^<]*)<\/text>/g)) {
    const attr = (k: string) => new RegExp(`(?:^|\\s)${k}="([^"]*)"`).exec(m[1])?.[1];
    const x = Number(attr('x')), y = Number(attr('y')), size = Number(attr('font-size'));
    const text = unesc(m[2]);
    const w = textWidth(text, size, attr('font-weight') === 'bold');
    const anchor = attr('text-anchor') ?? 'start';
    const x0 = anchor === 'middle' ? x - w / 2 : anchor === 'end' ? x - w : x;
    const box: [number, number][] = [[x0, y - 0.93 * size], [x0 + w, y - 0.93 * size], [x0 + w, y + 0.24 * size], [x0, y + 0.24 * size]];
    const rot = /rotate\(([-\d.]+) ([-\d.]+) ([-\d.]+)\)/.exec(attr('transform') ?? '');
    const corners = rot
      ? box.map(([px, py]) => {
          const a = (Number(rot[1]) * Math.PI) / 180, cx = Number(rot[2]), cy = Number(rot[3]);
          return [cx + (px - cx) * Math.cos(a) - (py - cy) * Math.sin(a), cy + (px - cx) * Math.sin(a) + (py - cy) * Math.cos(a)] as [number, number];
        })
      : box;
    texts.push({ text, corners });
  }
  return { width: Number(root[1]), height: Number(root[2]), texts };
}

/** Separating-axis test for two convex quadrilaterals, shrunk by `slack` px. */
function overlap(a: [number, number][], b: [number, number][], slack = 0.5): boolean {
  for (const poly of [a, b]) {
    for (let i = 0; i < 4; i++) {
      const [x1, y1] = poly[i], [x2, y2] = poly[(i + 1) % 4];
      const nx = y2 - y1, ny = x1 - x2;
      const len = Math.hypot(nx, ny) || 1;
      const proj = (p: [number, number][]) => p.map(([x, y]) => (x * nx + y * ny) / len);
      const pa = proj(a), pb = proj(b);
      if (Math.max(...pa) - slack <= Math.min(...pb) + slack || Math.max(...pb) - slack <= Math.min(...pa) + slack) return false;
    }
  }
  return true;
}

/**
 * Every label is on the canvas, no two labels touch, and each expected string is drawn whole (on
 * one line, or wrapped over consecutive lines).
 */
export function assertLegible(svg: string, expected: string[], what: string): void {
  const { width, height, texts } = svgTexts(svg);
  for (const t of texts)
    for (const [x, y] of t.corners) assert.ok(x >= -0.5 && x <= width + 0.5 && y >= -0.5 && y <= height + 0.5, `${what}: '${t.text}' runs off the ${width}x${height} canvas`);
  for (let i = 0; i < texts.length; i++)
    for (let j = i + 1; j < texts.length; j++) assert.ok(!overlap(texts[i].corners, texts[j].corners), `${what}: '${texts[i].text}' and '${texts[j].text}' overlap`);
  const lines = texts.map((t) => t.text);
  for (const e of expected) {
    const want = e.replace(/\s+/g, ' ').trim();
    const found = lines.some((_, i) => {
      let joined = '';
      for (let j = i; j < lines.length && joined.length < want.length; j++) {
        joined = joined ? (want.startsWith(`${joined} ${lines[j]}`) ? `${joined} ${lines[j]}` : joined + lines[j]) : lines[j];
        if (joined === want) return true;
        if (!want.startsWith(joined)) return false;
      }
      return false;
    });
    assert.ok(found, `${what}: '${want}' is not drawn whole (drawn: ${lines.map((l) => `'${l}'`).join(', ')})`);
  }
  assert.ok(!lines.some((l) => l.endsWith('…')), `${what}: a label is cut with '…'`);
}
