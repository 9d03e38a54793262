// Writes a report folder: report.json (machine-readable), report.md and index.html (for people),
// and figures/*.png referenced by both.

import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeModel, type ModelProvenance } from '../io/provenance.ts';
import { table as mdTable } from './figures.ts';
import { ReportError } from '../errors.ts';

export interface ReportFigure {
  /** File stem; sanitised to [A-Za-z0-9_-] and made unique. */
  name: string;
  png: Buffer;
  caption?: string;
}

export interface ReportTable {
  caption?: string;
  headers: string[];
  rows: (string | number)[][];
}

export interface ReportSection {
  title: string;
  /** Paragraphs of plain text (markdown in report.md, escaped in index.html). */
  text?: string | string[];
  figures?: ReportFigure[];
  tables?: ReportTable[];
  /** Extra values stored for this section in report.json. */
  data?: unknown;
}

export interface Report {
  title: string;
  summary?: string;
  /** Run settings (model, dataset, options): shown as a table and kept in report.json. */
  meta?: Record<string, string | number | boolean>;
  /** The model(s) whose terms or embeddings the numbers come from (src/io/provenance.ts). */
  models: ModelProvenance[];
  sections: ReportSection[];
  /** Anything else to keep in report.json. */
  data?: unknown;
}

export interface WrittenReport {
  dir: string;
  files: string[];
}

function htmlEsc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** JSON with typed arrays as plain arrays and non-finite numbers as null. */
function toJson(v: unknown): string {
  return JSON.stringify(
    v,
    (_k, x) => {
      if (ArrayBuffer.isView(x) && !(x instanceof DataView)) return Array.from(x as unknown as ArrayLike<number | bigint>, (e) => (typeof e === 'bigint' ? Number(e) : e));
      if (x instanceof Map) return Object.fromEntries(x);
      if (Buffer.isBuffer(x)) return undefined;
      return x;
    },
    1,
  );
}

/** Write the report into `dir` (created if needed); returns the files written, relative to dir. */
export async function writeReport(dir: string, report: Report): Promise<WrittenReport> {
  if (!report || typeof report.title !== 'string') throw new ReportError('writeReport: report needs a title');
  if (!Array.isArray(report.sections)) throw new ReportError('writeReport: report.sections must be an array');
  if (!Array.isArray(report.models) || !report.models.length) throw new ReportError('writeReport: report.models must name the model(s) the numbers come from');
  await mkdir(join(dir, 'figures'), { recursive: true });
  const files: string[] = [];
  const used = new Set<string>();
  const stem = (name: string) => {
    const base = (name.replace(/[^A-Za-z0-9_-]+/g, '_').replace(/^_+|_+$/g, '') || 'figure').slice(0, 80);
    let s = base;
    for (let i = 2; used.has(s); i++) s = `${base}_${i}`;
    used.add(s);
    return s;
  };

  // Figures first so every document can refer to their final paths.
  const sections = [];
  for (const sec of report.sections) {
    const figs = [];
    for (const f of sec.figures ?? []) {
      if (!Buffer.isBuffer(f.png) || f.png.length < 8 || f.png.readUInt32BE(0) !== 0x89504e47)
        throw new ReportError(`figure '${f.name}' in section '${sec.title}' is not a PNG buffer`);
      const path = `figures/${stem(f.name)}.png`;
      await writeFile(join(dir, path), f.png);
      files.push(path);
      figs.push({ path, caption: f.caption ?? '' });
    }
    const text = sec.text === undefined ? [] : Array.isArray(sec.text) ? sec.text : [sec.text];
    sections.push({ title: sec.title, text, figures: figs, tables: sec.tables ?? [], data: sec.data });
  }

  const json = {
    title: report.title,
    summary: report.summary ?? null,
    meta: report.meta ?? {},
    models: report.models,
    createdAt: new Date().toISOString(),
    sections,
    data: report.data ?? null,
  };
  await writeFile(join(dir, 'report.json'), toJson(json) + '\n');
  files.push('report.json');

  // Markdown.
  const made = `Made by model${report.models.length > 1 ? 's' : ''} ${report.models.map(describeModel).join(' and ')}.`;
  const md: string[] = [`# ${report.title}`, ''];
  if (report.summary) md.push(report.summary, '');
  md.push(made, '');
  if (report.meta && Object.keys(report.meta).length > 0)
    md.push(mdTable(['setting', 'value'], Object.entries(report.meta).map(([k, v]) => [k, String(v)])));
  for (const sec of sections) {
    md.push(`## ${sec.title}`, '');
    for (const p of sec.text) md.push(p, '');
    for (const t of sec.tables) {
      if (t.caption) md.push(`*${t.caption}*`, '');
      md.push(mdTable(t.headers, t.rows));
    }
    for (const f of sec.figures) md.push(`![${f.caption.replace(/[[\]]/g, '')}](${f.path})`, f.caption ? `\n*${f.caption}*\n` : '');
  }
  await writeFile(join(dir, 'report.md'), md.join('\n').replace(/\n{3,}/g, '\n\n'));
  files.push('report.md');

  // HTML.
  const cell = (v: string | number) => htmlEsc(typeof v === 'number' && !Number.isInteger(v) ? String(Number(v.toPrecision(4))) : String(v));
  const htmlTable = (headers: string[], rows: (string | number)[][]) =>
    `<table><thead><tr>${headers.map((h) => `<th>${htmlEsc(h)}</th>`).join('')}</tr></thead><tbody>` +
    rows.map((r) => `<tr>${r.map((v) => `<td>${cell(v)}</td>`).join('')}</tr>`).join('') +
    `</tbody></table>`;
  const h: string[] = [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${htmlEsc(report.title)}</title>`,
    '<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}' +
      'table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}' +
      'figure{margin:1em 0}img{max-width:100%}figcaption{color:#555;font-size:0.9em}</style>',
    '</head><body>',
    `<h1>${htmlEsc(report.title)}</h1>`,
  ];
  if (report.summary) h.push(`<p>${htmlEsc(report.summary)}</p>`);
  h.push(`<p>${htmlEsc(made)}</p>`);
  if (report.meta && Object.keys(report.meta).length > 0)
    h.push(htmlTable(['setting', 'value'], Object.entries(report.meta).map(([k, v]) => [k, String(v)])));
  for (const sec of sections) {
    h.push(`<section><h2>${htmlEsc(sec.title)}</h2>`);
    for (const p of sec.text) h.push(`<p>${htmlEsc(p)}</p>`);
    for (const t of sec.tables) {
      if (t.caption) h.push(`<p><em>${htmlEsc(t.caption)}</em></p>`);
      h.push(htmlTable(t.headers, t.rows));
    }
    for (const f of sec.figures)
      h.push(`<figure><img src="${htmlEsc(f.path)}" alt="${htmlEsc(f.caption)}">${f.caption ? `<figcaption>${htmlEsc(f.caption)}</figcaption>` : ''}</figure>`);
    h.push('</section>');
  }
  h.push('</body></html>');
  await writeFile(join(dir, 'index.html'), h.join('\n') + '\n');
  files.push('index.html');
  // A figure left by an earlier report into the same folder would pass for part of this one.
  for (const f of await readdir(join(dir, 'figures')))
    if (f.endsWith('.png') && !used.has(f.slice(0, -4))) await rm(join(dir, 'figures', f), { force: true });
  return { dir, files };
}
