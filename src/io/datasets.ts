// Image datasets as a flat, deterministic list of items: an image folder (class subfolders become
// labels), a list file (one path a line), or a CSV with a path column (plus label/group columns,
// as Waterbirds' metadata.csv has).

import { readdirSync, statSync } from 'node:fs';
import { pathProblem, readLines, readTextFile } from './files.ts';
import { dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { DatasetError } from '../errors.ts';

export interface DatasetItem {
  path: string; // absolute
  /** Path relative to the dataset root (what the store records). */
  id: string;
  label?: string;
  group?: string;
}

export interface Dataset {
  root: string;
  kind: 'folder' | 'list' | 'csv';
  items: DatasetItem[];
  /** Sorted distinct labels (empty when the dataset has none). */
  labels: string[];
  groups: string[];
}

export const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff', '.bmp', '.avif']);

export interface CsvColumns {
  path?: string;
  label?: string;
  group?: string;
  /** Keep rows where column = value, e.g. split=2. */
  filter?: [string, string][];
}

const PATH_COLS = ['path', 'filepath', 'file', 'filename', 'img_filename', 'image', 'image_path'];
const LABEL_COLS = ['label', 'y', 'class', 'target'];
const GROUP_COLS = ['group', 'place', 'background', 'env'];

export function loadDataset(spec: string, cols: CsvColumns = {}): Dataset {
  const root = resolve(spec);
  const why = pathProblem(root, 'any');
  if (why) throw new DatasetError(`dataset ${spec} ${why}`);
  let ds: Dataset;
  if (statSync(root).isDirectory()) ds = fromFolder(root);
  else if (extname(root).toLowerCase() === '.csv') ds = fromCsv(root, cols);
  else ds = fromList(root);
  if (ds.items.length === 0) throw new DatasetError(`dataset ${spec} has no images (looked for ${[...IMAGE_EXTENSIONS].join(' ')})`);
  return ds;
}

function finish(root: string, kind: Dataset['kind'], items: DatasetItem[]): Dataset {
  const uniq = (xs: (string | undefined)[]) => [...new Set(xs.filter((x): x is string => x !== undefined))].sort(naturalCompare);
  return { root, kind, items, labels: uniq(items.map((i) => i.label)), groups: uniq(items.map((i) => i.group)) };
}

function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

function fromFolder(root: string): Dataset {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (e.name.startsWith('.')) continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (IMAGE_EXTENSIONS.has(extname(e.name).toLowerCase())) files.push(p);
    }
  };
  walk(root);
  const items = files.map((p) => {
    const id = relative(root, p).split(sep).join('/');
    const parts = id.split('/');
    return { path: p, id, label: parts.length > 1 ? parts[0] : undefined };
  });
  return finish(root, 'folder', items);
}

function fromList(file: string): Dataset {
  const base = dirname(file);
  const items = readLines(file, 'dataset list')
    .filter((l) => !l.startsWith('#'))
    .map((l) => {
      const p = isAbsolute(l) ? l : join(base, l);
      return { path: p, id: l };
    });
  return finish(base, 'list', items);
}

/** RFC 4180 CSV: quoted fields, doubled quotes, commas and newlines inside quotes. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      field = '';
      if (row.some((f) => f !== '')) rows.push(row);
      row = [];
    } else field += c;
  }
  if (field !== '' || row.length) {
    row.push(field);
    if (row.some((f) => f !== '')) rows.push(row);
  }
  return rows;
}

function pickColumn(header: string[], wanted: string | undefined, candidates: string[], what: string, file: string, required: boolean): number {
  if (wanted !== undefined) {
    const i = header.indexOf(wanted);
    if (i < 0) throw new DatasetError(`${file}: no column '${wanted}' for the ${what} (columns: ${header.join(', ')})`);
    return i;
  }
  const i = header.findIndex((h) => candidates.includes(h.trim().toLowerCase()));
  if (i < 0 && required) throw new DatasetError(`${file}: no ${what} column (looked for ${candidates.join(', ')}; columns: ${header.join(', ')}); name it with --path-col`);
  return i;
}

function fromCsv(file: string, cols: CsvColumns): Dataset {
  const rows = parseCsv(readTextFile(file, 'dataset CSV'));
  if (rows.length === 0) throw new DatasetError(`${file}: empty CSV`);
  const header = rows[0].map((h) => h.trim());
  const pi = pickColumn(header, cols.path, PATH_COLS, 'image path', file, true);
  const li = pickColumn(header, cols.label, LABEL_COLS, 'label', file, false);
  const gi = pickColumn(header, cols.group, GROUP_COLS, 'group', file, false);
  const filters = (cols.filter ?? []).map(([c, v]) => {
    const i = header.indexOf(c);
    if (i < 0) throw new DatasetError(`${file}: filter column '${c}' not found (columns: ${header.join(', ')})`);
    return [i, v] as const;
  });
  const base = dirname(file);
  const items: DatasetItem[] = [];
  for (const r of rows.slice(1)) {
    if (filters.some(([i, v]) => r[i] !== v)) continue;
    const rel = r[pi]?.trim();
    if (!rel) continue;
    items.push({
      path: isAbsolute(rel) ? rel : join(base, rel),
      id: rel,
      label: li >= 0 ? r[li]?.trim() : undefined,
      group: gi >= 0 ? r[gi]?.trim() : undefined,
    });
  }
  return finish(base, 'csv', items);
}
