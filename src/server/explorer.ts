// What the explorer computes: the model (loaded once, shared), uploaded images (bounded LRU by
// content id), an optional store (retrieval, ablation, head top images) and TextSpan heads.
// All handlers are async and long loops yield, so one slow request does not stall the others.

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readLines } from '../io/files.ts';
import sharp from 'sharp';
import { toKept } from '../analyses/heads.ts';
import { dot, normalizeRows } from '../analyses/linalg.ts';
import { queryImage, retrievalStudy, type QueryImage, type RetrievalView } from '../analyses/retrieval_study.ts';
import { composeEmbeddings } from '../analyses/store_terms.ts';
import { embedClassifier } from '../analyses/text_sets.ts';
import { textTokenMaps } from '../analyses/text_maps.ts';
import { readTextSpanFile, type TextSpanHead } from '../analyses/textspan_study.ts';
import { groupAccuracy, predict, type GroupAccuracy } from '../analyses/zeroshot.ts';
import type { ImageDecomposer } from '../decompose/decomposer.ts';
import { decomposerFor } from '../decompose/decomposers.ts';
import type { Decomposition } from '../decompose/prs.ts';
import { modelProvenance, requireSameModel } from '../io/provenance.ts';
import { loadStore, type StoreData } from '../io/store.ts';
import { headName, parseHeadList } from '../notation.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { preprocessOptions } from '../model/preprocess_model.ts';
import { f32, type F32 } from '../tensor.ts';
import { DecodePool, uploadBudget, type DecodePoolOptions } from './decode_pool.ts';
import { safeResolve } from './http_util.ts';
import { Gate, Lru } from './lru.ts';
import { NeuronExplorer, type NeuronViewOptions } from './neurons.ts';
import { AnalysisError, HttpError, UsageError } from '../errors.ts';

export const MAX_TEXTS = 16;
export const MAX_TEXT_CHARS = 300;
export const ZEROSHOT_TEMPLATE = 'a photo of a {}.';

export interface ExplorerOptions {
  model: ClipModel;
  /** Store directory (from `cliplens decompose`). */
  store?: string;
  /** TextSpan result JSON. */
  textspan?: string;
  /** Class names, one a line, in the order of the store's labels (default: the labels). */
  classes?: string;
  /** Uploaded images kept (LRU). */
  cacheSize?: number;
  /** Check every store shard's sha256 when opening the store (size, header and rows always are). */
  verifyStore?: boolean;
  /** The bounded decode queue for uploads (worker threads). */
  decode?: DecodePoolOptions;
  /** The neuron view (second-order effects of one MLP block's neurons). */
  neurons?: NeuronViewOptions;
}

interface Upload {
  id: string;
  u8: Uint8Array;
  /** pixel_values [1, 3, S, S] as the model's preprocessing made them. */
  pixels: Float32Array;
  source: { width: number; height: number };
  decodedAs?: { width: number; height: number };
  taps: unknown;
  png?: Promise<Buffer>;
  decomposition?: Promise<Decomposition>;
}

interface StoreState {
  dir: string;
  data: StoreData;
  n: number;
  /** Kept attention layers (positions in data.attn). */
  layers: number[];
  root: string;
  hasImages: boolean;
  classNames: string[];
}

const tick = () => new Promise<void>((r) => setImmediate(r));

/** Validated list of texts from a request. */
export function checkTexts(v: unknown, what = 'texts'): string[] {
  if (!Array.isArray(v) || v.length === 0) throw new HttpError(400, `${what} must be a non-empty array of strings`);
  if (v.length > MAX_TEXTS) throw new HttpError(400, `at most ${MAX_TEXTS} texts at once, got ${v.length}`);
  return v.map((t, i) => {
    if (typeof t !== 'string' || t.trim() === '') throw new HttpError(400, `${what}[${i}] must be a non-empty string`);
    if (t.length > MAX_TEXT_CHARS) throw new HttpError(400, `${what}[${i}] is longer than ${MAX_TEXT_CHARS} characters`);
    return t.trim();
  });
}

export function checkInt(v: unknown, what: string, lo: number, hi: number): number {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < lo || n > hi) throw new HttpError(400, `${what} must be an integer in ${lo}..${hi}, got ${JSON.stringify(v)}`);
  return n;
}

const norm = (v: ArrayLike<number>, off: number, d: number) => Math.sqrt(dot(v, off, v, off, d));

const round = (x: number) => Math.round(x * 1e6) / 1e6;

export class Explorer {
  readonly model: ClipModel;
  readonly dec: ImageDecomposer;
  private uploads: Lru<string, Upload>;
  private pendingUploads = new Map<string, Promise<Upload>>();
  private textCache = new Lru<string, Promise<Float32Array>>(4096);
  private thumbs = new Lru<string, Promise<Buffer>>(512);
  private headTopCache = new Lru<string, Promise<unknown>>(256);
  /** ORT runs at once: bounds memory when many requests arrive together. */
  private gate = new Gate(2);
  /** Uploads are decoded here, off the event loop, a bounded number at once. */
  readonly decoder: DecodePool;
  private store?: StoreState;
  private classifier?: Promise<Float32Array>;
  private baselinePreds?: Promise<Int32Array>;
  readonly heads: TextSpanHead[];
  private neurons?: NeuronExplorer;

  private constructor(opts: ExplorerOptions, store: StoreState | undefined, heads: TextSpanHead[], neurons?: NeuronExplorer) {
    this.model = opts.model;
    this.dec = decomposerFor(opts.model);
    this.uploads = new Lru(opts.cacheSize ?? 64);
    this.decoder = new DecodePool(opts.decode);
    this.store = store;
    this.heads = heads;
    this.neurons = neurons;
  }

  static async create(opts: ExplorerOptions): Promise<Explorer> {
    const { L, H } = decomposerFor(opts.model).layout();
    const served = { what: `--model ${opts.model.name}`, model: modelProvenance(opts.model) };
    const file = opts.textspan ? readTextSpanFile(opts.textspan) : undefined;
    if (file) requireSameModel(served, { what: `TextSpan file ${file.path}`, model: file.model });
    const heads = file?.heads ?? [];
    for (const h of heads) {
      if (h.layer >= L || h.head >= H) throw new AnalysisError(`TextSpan file ${opts.textspan}: head ${headName(h)} does not exist in model ${opts.model.name} (layers 0..${L - 1}, heads 0..${H - 1})`);
    }
    const store = opts.store ? await openStore(opts.model, opts.store, opts.classes, opts.verifyStore) : undefined;
    if (!opts.store && opts.classes) throw new UsageError('--classes needs --store (the classes name the store labels)');
    return new Explorer(opts, store, heads, opts.neurons ? NeuronExplorer.create(opts.model, opts.neurons) : undefined);
  }

  /** The decomposition's shape (SigLIP: one block, the pooling head) and names for the page. */
  dims() {
    const { L, H, d, grid, N, clsToken, blockNames, termNames, chartLabels } = this.dec.layout();
    return { L, H, d, grid, N, clsToken, blockNames, termNames, chartLabels, family: this.model.family.id, familyLabel: this.model.family.label, imageSize: this.model.config.vision.imageSize };
  }

  info() {
    const s = this.store;
    return {
      model: { name: this.model.name, ...this.dims() },
      store: s
        ? { dir: s.dir, n: s.n, layers: s.layers, labels: s.data.manifest.dataset.labels, groups: s.data.manifest.dataset.groups, classes: s.classNames, hasImages: s.hasImages, normalised: s.data.manifest.normalised, template: ZEROSHOT_TEMPLATE }
        : null,
      textspan: this.heads.length ? { heads: this.heads.length } : null,
      neurons: this.neurons?.info() ?? null,
      maxTexts: MAX_TEXTS,
      decode: { ...this.decoder.stats(), budgetPixels: uploadBudget(this.model.config.vision.imageSize).pixels },
    };
  }

  async close(): Promise<void> {
    await this.decoder.close();
  }

  // ------------------------------------------------------------------ uploads

  /**
   * Decode (in a worker, under the pixel budget), preprocess and run the vision tower once; the id
   * is the content hash. `source` is the file's size; `decodedAs` is set when it was shrunk on load.
   */
  async addUpload(bytes: Buffer): Promise<{ id: string; size: number; source: { width: number; height: number }; decodedAs?: { width: number; height: number } }> {
    const id = createHash('sha256').update(bytes).digest('hex').slice(0, 24);
    const size = this.model.config.vision.imageSize;
    const done = (u: Upload) => ({ id, size, source: u.source, ...(u.decodedAs && { decodedAs: u.decodedAs }) });
    const cached = this.uploads.get(id);
    if (cached) return done(cached);
    let p = this.pendingUploads.get(id);
    if (!p) {
      p = (async () => {
        const r = await this.decoder.decode(bytes, preprocessOptions(this.model.config));
        const taps = await this.gate.run(() => this.dec.taps(f32([1, 3, size, size], r.pixels), true));
        return { id, u8: r.u8, pixels: r.pixels, taps, source: { width: r.width, height: r.height }, decodedAs: r.decodedAs };
      })();
      this.pendingUploads.set(id, p);
      p.finally(() => this.pendingUploads.delete(id)).catch(() => undefined);
    }
    const u = await p;
    this.uploads.set(id, u);
    return done(u);
  }

  private upload(id: unknown): Upload {
    if (typeof id !== 'string' || !/^[0-9a-f]{24}$/.test(id)) throw new HttpError(400, 'id must be the id returned by /api/upload');
    const u = this.uploads.get(id);
    if (!u) throw new HttpError(404, `image ${id} is not in the cache any more (it keeps the ${this.uploads.capacity} most recent); upload it again`);
    return u;
  }

  /** pixel_values [1, 3, S, S] of an upload (from the preprocessed image it keeps). */
  uploadPixels(id: unknown): F32 {
    const S = this.model.config.vision.imageSize;
    return f32([1, 3, S, S], this.upload(id).pixels);
  }

  neuronView(): NeuronExplorer {
    if (!this.neurons) throw new HttpError(404, 'no neurons loaded: start the server with --neurons PCS (cliplens neurons pca)');
    return this.neurons;
  }

  /** The preprocessed (resized, centre-cropped) image the model saw, as PNG. */
  uploadPng(id: string): Promise<Buffer> {
    const u = this.upload(id);
    const S = this.model.config.vision.imageSize;
    u.png ??= sharp(Buffer.from(u.u8.buffer, u.u8.byteOffset, S * S * 3), { raw: { width: S, height: S, channels: 3 } }).png().toBuffer();
    return u.png;
  }

  /** Normalised text embeddings [T·d], each text encoded once and cached. */
  async textEmbeddings(texts: string[]): Promise<Float32Array> {
    const d = this.model.config.embedDim;
    const missing = [...new Set(texts.filter((t) => !this.textCache.has(t)))];
    if (missing.length) {
      const batch = this.gate.run(async () => {
        const { features } = await this.model.encodeTexts(missing);
        return normalizeRows(features.data, missing.length, d);
      });
      missing.forEach((t, i) => {
        const p = batch.then((all) => all.slice(i * d, (i + 1) * d));
        p.catch(() => this.textCache.delete(t));
        this.textCache.set(t, p);
      });
    }
    const rows = await Promise.all(texts.map((t) => this.textCache.get(t) ?? this.textEmbeddings([t])));
    const out = new Float32Array(texts.length * d);
    rows.forEach((r, i) => out.set(r, i * d));
    return out;
  }

  /**
   * The embedding's decomposition for one upload: per layer ‖Σ_h c_{l,h}‖ and ‖MLP_l‖, every
   * head's norm, and (per text) each term's projection on the text; similarity = cos(z, t).
   */
  async decompose(idArg: unknown, textsArg: unknown) {
    const u = this.upload(idArg);
    const texts = textsArg === undefined || (Array.isArray(textsArg) && textsArg.length === 0) ? [] : checkTexts(textsArg);
    u.decomposition ??= this.dec.fromTaps(u.taps, { normalise: true });
    const dc = await u.decomposition;
    const { L, H, d } = this.dims();
    const T = texts.length;
    const temb = T ? await this.textEmbeddings(texts) : new Float32Array(0);
    const A = dc.attn.data; // [1, L, H, d]
    const M = dc.mlp.data; // [1, L+1, d]
    const layerSum = new Float64Array(L * d);
    for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) for (let k = 0; k < d; k++) layerSum[l * d + k] += A[(l * H + h) * d + k];
    const zhat = new Float64Array(d);
    for (let k = 0; k < d; k++) {
      let s = 0;
      for (let l = 0; l < L; l++) s += layerSum[l * d + k];
      for (let j = 0; j <= L; j++) s += M[j * d + k];
      zhat[k] = s;
    }
    return {
      id: u.id,
      texts,
      norm: round(dc.norm.data[0]),
      /** ‖Σ terms‖ (≈1: the terms are normalised by ‖z‖) */
      sumNorm: round(norm(zhat, 0, d)),
      attn: {
        norm: Array.from({ length: L }, (_, l) => round(norm(layerSum, l * d, d))),
        proj: texts.map((_, t) => Array.from({ length: L }, (_, l) => round(dot(layerSum, l * d, temb, t * d, d)))),
      },
      mlp: {
        norm: Array.from({ length: L + 1 }, (_, j) => round(norm(M, j * d, d))),
        proj: texts.map((_, t) => Array.from({ length: L + 1 }, (_, j) => round(dot(M, j * d, temb, t * d, d)))),
      },
      heads: {
        norm: Array.from({ length: L }, (_, l) => Array.from({ length: H }, (_, h) => round(norm(A, (l * H + h) * d, d)))),
        proj: texts.map((_, t) => Array.from({ length: L }, (_, l) => Array.from({ length: H }, (_, h) => round(dot(A, (l * H + h) * d, temb, t * d, d))))),
      },
      similarity: texts.map((_, t) => round(dot(zhat, 0, temb, t * d, d))),
    };
  }

  /** Per-patch maps of each text's direct contribution, summed over all or one layer / head. */
  async heatmap(idArg: unknown, textsArg: unknown, layerArg?: unknown, headArg?: unknown) {
    const u = this.upload(idArg);
    const texts = checkTexts(textsArg);
    const { L, H, d, grid } = this.dims();
    const layer = layerArg === undefined || layerArg === null || layerArg === 'all' ? undefined : checkInt(layerArg, 'layer', 0, L - 1);
    const head = headArg === undefined || headArg === null || headArg === 'all' ? undefined : checkInt(headArg, 'head', 0, H - 1);
    const temb = f32([texts.length, d], await this.textEmbeddings(texts));
    const per = await this.gate.run(() => textTokenMaps(this.dec, { taps: u.taps }, temb, { layers: layer !== undefined ? [layer] : undefined, heads: head !== undefined ? [head] : undefined }, true));
    const N = per.shape[2];
    return {
      id: u.id,
      grid,
      layer: layer ?? 'all',
      head: head ?? 'all',
      maps: texts.map((text, t) => {
        const row = per.data.subarray(t * N, (t + 1) * N);
        const cls = N - grid * grid; // 1 with a CLS token, 0 without (SigLIP)
        return { text, cls: cls ? round(row[0]) : null, patches: Array.from(row.subarray(cls), round) };
      }),
    };
  }

  // ------------------------------------------------------------------ store

  private needStore(): StoreState {
    if (!this.store) throw new HttpError(404, 'no store loaded: start the server with --store DIR (made by cliplens decompose)');
    return this.store;
  }

  private item(row: number, score?: number) {
    const s = this.needStore();
    const it = s.data.manifest.items[s.data.index[row]];
    return { row, id: it.id, label: it.label ?? null, group: it.group ?? null, ...(score !== undefined ? { score: round(score) } : {}) };
  }

  items(offsetArg: unknown, limitArg: unknown) {
    const s = this.needStore();
    const offset = offsetArg === undefined ? 0 : checkInt(offsetArg, 'offset', 0, Math.max(0, s.n));
    const limit = limitArg === undefined ? 60 : checkInt(limitArg, 'limit', 1, 500);
    const items = [];
    for (let r = offset; r < Math.min(s.n, offset + limit); r++) items.push(this.item(r));
    return { total: s.n, offset, items };
  }

  private checkRow(v: unknown): number {
    const s = this.needStore();
    if (s.n === 0) throw new HttpError(404, 'the store has no images');
    return checkInt(v, 'row', 0, s.n - 1);
  }

  /** A store image's file (inside the dataset root; symlinks out are refused). */
  itemPath(rowArg: unknown): string {
    const s = this.needStore();
    const row = this.checkRow(rowArg);
    if (!s.hasImages) throw new HttpError(404, `the store's dataset root ${s.root} is not readable here, so there are no thumbnails`);
    return safeResolve(s.root, s.data.manifest.items[s.data.index[row]].id, { encoded: false });
  }

  datasetRoot(): string {
    const s = this.needStore();
    if (!s.hasImages) throw new HttpError(404, `the store's dataset root ${s.root} is not readable here`);
    return s.root;
  }

  thumbnail(rowArg: unknown, sizeArg: unknown): Promise<Buffer> {
    return this.thumbnailFile(this.itemPath(rowArg), sizeArg);
  }

  /** A cached thumbnail of an image file already checked to lie inside its dataset root. */
  thumbnailFile(path: string, sizeArg: unknown): Promise<Buffer> {
    const size = sizeArg === undefined ? 160 : checkInt(sizeArg, 'size', 16, 512);
    const key = `${path}|${size}`;
    let t = this.thumbs.get(key);
    if (!t) {
      t = jpegThumbnail(path, size).catch((e: Error) => {
        this.thumbs.delete(key);
        throw e;
      });
      this.thumbs.set(key, t);
    }
    return t;
  }

  private layerPos(s: StoreState, l: number): number {
    const li = s.layers.indexOf(l);
    if (li < 0) throw new HttpError(400, `layer ${l}'s head terms are not in the store (it keeps layers ${s.layers.join(', ')})`);
    return li;
  }

  /**
   * Nearest store images by one head's term next to those by the whole embedding, for a stored
   * image (row; cosine) or an uploaded one (id: decomposed by the served model, which is the
   * store's; dot product of the terms, as the reference's nns.ipynb).
   */
  async retrieval(rowArg: unknown, layerArg: unknown, headArg: unknown, kArg: unknown, idArg?: unknown) {
    const s = this.needStore();
    const { L, H } = this.dims();
    const layer = checkInt(layerArg, 'layer', 0, L - 1);
    const head = checkInt(headArg, 'head', 0, H - 1);
    this.layerPos(s, layer);
    const upload = idArg !== undefined ? this.upload(idArg) : undefined;
    const row = upload ? undefined : this.checkRow(rowArg);
    if (s.n < (upload ? 1 : 2)) throw new HttpError(400, 'retrieval needs a store with at least 2 images');
    const k = kArg === undefined ? 8 : checkInt(kArg, 'k', 1, Math.min(100, upload ? s.n : s.n - 1));
    let query: number | QueryImage = row!;
    if (upload) {
      query = queryImage('uploaded image', await this.dec.fromTaps(upload.taps, { normalise: s.data.manifest.normalised }));
    }
    await tick();
    const res = retrievalStudy(s.data, [{ layer, head }], query, { k, precisionQueries: 0, indexThreshold: Infinity }); // exact: no approximate index built per request
    const items = (v: RetrievalView) => v.neighbours.map((nb) => this.item(nb.row, nb.score));
    return { query: upload ? { id: upload.id, upload: true } : this.item(row!), layer, head, k, score: res.score, byHead: items(res.views[0]), whole: items(res.views[res.views.length - 1]) };
  }

  headCards(qArg: unknown) {
    const q = typeof qArg === 'string' ? qArg.trim().toLowerCase() : '';
    const s = this.store;
    const named = parseHeadList(q);
    const isHead = (h: TextSpanHead) => !named.bad && named.heads.some((p) => p.layer === h.layer && (p.head === '*' || p.head === h.head));
    const cards = this.heads
      .filter((h) => !q || h.texts.some((t) => t.toLowerCase().includes(q)) || isHead(h))
      .map((h) => ({ ...h, topImages: !!s && s.hasImages && s.layers.includes(h.layer) }));
    return { total: this.heads.length, query: q, heads: cards };
  }

  /** Store images with the largest projection of head (l, h)'s term on the head's first TextSpan text. */
  async headTop(layerArg: unknown, headArg: unknown, kArg: unknown) {
    const s = this.needStore();
    const { L, H, d } = this.dims();
    const layer = checkInt(layerArg, 'layer', 0, L - 1);
    const head = checkInt(headArg, 'head', 0, H - 1);
    const k = kArg === undefined ? 8 : checkInt(kArg, 'k', 1, 100);
    const card = this.heads.find((h) => h.layer === layer && h.head === head);
    if (!card || card.texts.length === 0) throw new HttpError(404, `no TextSpan texts for head ${headName({ layer, head })}`);
    const li = this.layerPos(s, layer);
    const key = `${layer}|${head}|${k}`;
    let p = this.headTopCache.get(key);
    if (!p) {
      p = (async () => {
        const text = card.texts[0];
        const t = await this.textEmbeddings([text]);
        const Lk = s.layers.length;
        const A = s.data.attn.data;
        const scores = new Float64Array(s.n);
        for (let b = 0; b < s.n; b++) {
          scores[b] = dot(A, ((b * Lk + li) * H + head) * d, t, 0, d);
          if (b % 4096 === 4095) await tick();
        }
        const order = Array.from({ length: s.n }, (_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
        return { layer, head, text, images: order.slice(0, Math.min(k, s.n)).map((r) => this.item(r, scores[r])) };
      })();
      p.catch(() => this.headTopCache.delete(key));
      this.headTopCache.set(key, p);
    }
    return p;
  }

  private getClassifier(s: StoreState): Promise<Float32Array> {
    this.classifier ??= this.gate.run(async () => (await embedClassifier(this.model, s.classNames, [ZEROSHOT_TEMPLATE])).embeddings.data);
    this.classifier.catch(() => (this.classifier = undefined));
    return this.classifier;
  }

  /**
   * Zero-shot predictions over the labelled store rows with the chosen heads (and optionally all
   * MLPs and the ln_pre term) mean-ablated, as the ablation study composes them (composeEmbeddings).
   */
  async ablation(headsArg: unknown, mlpsArg: unknown) {
    const s = this.needStore();
    if (!s.classNames.length) throw new HttpError(400, 'the store has no labels, so there is nothing to classify');
    const { H, d, L } = this.dims();
    if (!Array.isArray(headsArg)) throw new HttpError(400, 'heads must be an array of [layer, head] pairs');
    if (headsArg.length > s.layers.length * H) throw new HttpError(400, 'too many heads');
    const seen = new Set<string>();
    const heads: [number, number][] = [];
    for (const hd of headsArg) {
      if (!Array.isArray(hd) || hd.length !== 2) throw new HttpError(400, 'heads must be an array of [layer, head] pairs');
      const l = checkInt(hd[0], 'layer', 0, L - 1);
      const h = checkInt(hd[1], 'head', 0, H - 1);
      this.layerPos(s, l);
      if (!seen.has(`${l}.${h}`)) heads.push([l, h]);
      seen.add(`${l}.${h}`);
    }
    const mlps = mlpsArg === true;
    const classifier = await this.getClassifier(s);
    const rows: number[] = [];
    for (let b = 0; b < s.n; b++) if (s.data.labels[b] >= 0) rows.push(b);
    if (!rows.length) throw new HttpError(400, 'no store image has a label');
    const C = s.classNames.length;
    const cls = { shape: [C, d], data: classifier };
    const labels = Int32Array.from(rows, (b) => s.data.labels[b]);
    const groups = Int32Array.from(rows, (b) => s.data.groups[b]);
    const embOf = async (ablate: boolean) => {
      await tick();
      const all = composeEmbeddings(s.data, ablate ? { heads: toKept(s.data.manifest, heads.map(([layer, head]) => ({ layer, head }))), mlps } : {});
      const out = new Float32Array(rows.length * d);
      rows.forEach((b, i) => out.set(all.subarray(b * d, (b + 1) * d), i * d));
      return predict({ shape: [rows.length, d], data: out }, cls);
    };
    this.baselinePreds ??= embOf(false);
    const before = await this.baselinePreds;
    const after = heads.length || mlps ? await embOf(true) : before;
    const summary = (g: GroupAccuracy) => ({
      overall: round(g.overall),
      mean: round(g.mean),
      worst: round(g.worst),
      cells: g.cells.map((c) => ({ label: s.classNames[c.label] ?? String(c.label), group: c.group >= 0 ? s.data.manifest.dataset.groups[c.group] : null, count: c.count, correct: c.correct, accuracy: round(c.accuracy) })),
    });
    const changed: (ReturnType<Explorer['item']> & { before: string; after: string })[] = [];
    let nChanged = 0;
    for (let i = 0; i < rows.length; i++) {
      if (before[i] === after[i]) continue;
      nChanged++;
      if (changed.length < 12) changed.push({ ...this.item(rows[i]), before: s.classNames[before[i]], after: s.classNames[after[i]] });
    }
    return {
      n: rows.length,
      classes: s.classNames,
      template: ZEROSHOT_TEMPLATE,
      ablated: { heads, mlps },
      baseline: summary(groupAccuracy(before, labels, groups)),
      result: summary(groupAccuracy(after, labels, groups)),
      changed: nChanged,
      examples: changed,
    };
  }
}

/** A square JPEG thumbnail of an image file (422 when it cannot be read). */
export function jpegThumbnail(path: string, size: number): Promise<Buffer> {
  return sharp(path, { limitInputPixels: 1 << 28 })
    .rotate()
    .resize(size, size, { fit: 'cover' })
    .jpeg({ quality: 85 })
    .toBuffer()
    .catch((e: Error) => {
      throw new HttpError(422, `image could not be read: ${e.message.split('\n')[0]}`);
    });
}

async function openStore(model: ClipModel, dir: string, classesFile?: string, verify = false): Promise<StoreState> {
  const data = loadStore(dir, { verify });
  const m = data.manifest;
  requireSameModel({ what: `--model ${model.name}`, model: modelProvenance(model) }, { what: `store ${dir}`, model: m.model });
  const n = data.attn.shape[0];
  let classNames = m.dataset.labels;
  if (classesFile) {
    const lines = readLines(classesFile, 'classes file');
    if (lines.length !== classNames.length) {
      throw new UsageError(`classes file ${classesFile} has ${lines.length} names but the store has ${classNames.length} labels (${classNames.slice(0, 5).join(', ')}${classNames.length > 5 ? ', …' : ''}); give one name per label, in that order`);
    }
    classNames = lines;
  }
  const hasImages = existsSync(m.dataset.root);
  return { dir, data, n, layers: m.layers, root: m.dataset.root, hasImages, classNames };
}

