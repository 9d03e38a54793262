// The explorer's neuron view: find the neurons of one MLP block whose second-order direction (first
// PC) matches a text, see a neuron's texts, its top store images and the distribution of its
// effect, its activation map on an uploaded image, and the concepts the significant neurons of an
// upload describe. Loaded with `cliplens serve --neurons PCS [--neuron-descriptions JSON]
// [--neuron-store DIR]`.

import { existsSync } from 'node:fs';
import type { ClipModel } from '../runtime/clip.ts';
import { modelProvenance } from '../io/provenance.ts';
import type { F32 } from '../tensor.ts';
import { discoverConcepts, neuronNorms, topImages } from '../neurons/concepts.ts';
import type { Description } from '../neurons/describe.ts';
import { NeuronEffects, neuronVariant, rebuildImage, type NeuronFactors } from '../neurons/effects.ts';
import { readDescriptionsFile, readPcaFile, requireStats, type PcaFile } from '../neurons/files.ts';
import { centredNorms } from '../neurons/pca.ts';
import { histogram } from '../report/neuron_reports.ts';
import { checkSameModel, NeuronStore } from '../neurons/store.ts';
import { safeResolve } from './http_util.ts';
import { Gate, Lru } from './lru.ts';
import { HttpError } from '../errors.ts';

export interface NeuronViewOptions {
  /** PCA file of the block (cliplens neurons pca): pc, mean, norms, and the block in its metadata. */
  pcs: string;
  /** Descriptions JSON (cliplens neurons describe --out). */
  descriptions?: string;
  /** Neuron store whose images are shown as top images. */
  store?: string;
}

const round = (x: number) => Math.round(x * 1e6) / 1e6;
const tick = () => new Promise<void>((r) => setImmediate(r));

export class NeuronExplorer {
  private norms = new Lru<number, Promise<Float64Array>>(64);
  private factors = new Lru<string, Promise<NeuronFactors>>(32);
  private gate = new Gate(1);
  private effects: NeuronEffects;
  readonly layer: number;
  readonly M: number;
  private tau: Float32Array;

  private constructor(
    private model: ClipModel,
    private pca: PcaFile,
    private descriptions: Map<number, Description> | undefined,
    private store: NeuronStore | undefined,
  ) {
    this.layer = pca.provenance.layer!;
    this.M = pca.pc.shape[0];
    this.effects = new NeuronEffects(model, this.layer);
    const k = pca.norms.shape[1];
    this.tau = Float32Array.from({ length: this.M }, (_, n) => pca.norms.data[n * k]);
  }

  static create(model: ClipModel, opts: NeuronViewOptions): NeuronExplorer {
    const pca = readPcaFile(opts.pcs, 'neurons');
    requireStats(pca, opts.pcs);
    if (pca.provenance.layer === undefined) throw new Error(`--neurons ${opts.pcs} does not record its MLP block; make it with cliplens neurons pca`);
    const here = { model: modelProvenance(model), what: `model '${model.name}'` };
    checkSameModel({ ...pca.provenance, what: `--neurons ${opts.pcs}` }, here, { layer: false });
    if (pca.pc.shape[0] !== model.dims().hidden) throw new Error(`--neurons ${opts.pcs} has ${pca.pc.shape[0]} neurons, the model's MLPs ${model.dims().hidden}`);
    const store = opts.store ? NeuronStore.open(opts.store, { requireComplete: true }) : undefined;
    if (store) checkSameModel({ ...pca.provenance, what: `--neurons ${opts.pcs}` }, { ...store.provenance, what: `--neuron-store ${opts.store}` });
    const descriptions = opts.descriptions ? readDescriptionsFile(opts.descriptions) : undefined;
    return new NeuronExplorer(model, pca, descriptions, store);
  }

  info() {
    return {
      layer: this.layer,
      neurons: this.M,
      descriptions: !!this.descriptions,
      store: this.store ? { images: this.store.B, hasImages: existsSync(this.store.manifest.dataset.root) } : null,
    };
  }

  checkNeuron(v: unknown): number {
    const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n >= this.M) throw new HttpError(400, `neuron must be an integer in 0..${this.M - 1}, got ${JSON.stringify(v)}`);
    return n;
  }

  private texts(n: number, k = 6) {
    return (this.descriptions?.get(n) ?? []).slice(0, k).map(([i, c, t]) => ({ index: i, coef: round(c), text: t }));
  }

  /**
   * Neurons whose first PC lies closest to the direction of `query` (|pc · t|, the score the
   * reference's segmentation selects neurons by), or the neuron numbered `query`.
   */
  async search(query: string, k: number, embed: (texts: string[]) => Promise<Float32Array>) {
    const q = query.trim();
    if (/^#?\d+$/.test(q)) {
      const n = this.checkNeuron(q.replace('#', ''));
      return { query: q, by: 'number', neurons: [{ neuron: n, score: null, texts: this.texts(n) }] };
    }
    if (!q) throw new HttpError(400, 'q must be a text or a neuron number');
    const t = await embed([q]);
    const d = t.length;
    const pc = this.pca.pc.data;
    const score = new Float64Array(this.M);
    for (let n = 0; n < this.M; n++) {
      let s = 0;
      for (let e = 0; e < d; e++) s += pc[n * d + e] * t[e];
      score[n] = s;
    }
    const order = Array.from({ length: this.M }, (_, n) => n).sort((a, b) => Math.abs(score[b]) - Math.abs(score[a]) || a - b);
    return { query: q, by: 'text', neurons: order.slice(0, k).map((n) => ({ neuron: n, score: round(score[n]), texts: this.texts(n) })) };
  }

  private needStore(): NeuronStore {
    if (!this.store) throw new HttpError(404, 'no neuron store loaded: start the server with --neuron-store DIR (cliplens neurons effects --dataset … --store DIR)');
    return this.store;
  }

  /** A neuron's texts, τ, and with a store its top images and the distribution of its centred norms. */
  async card(nArg: unknown, kArg: number) {
    const n = this.checkNeuron(nArg);
    const k = this.pca.norms.shape[1];
    const base = { neuron: n, layer: this.layer, tau: round(this.tau[n]), texts: (this.descriptions?.get(n) ?? []).map(([i, c, t]) => ({ index: i, coef: round(c), text: t })) };
    if (!this.store) return { ...base, top: [], histogram: null, significant: null, k };
    const s = this.store;
    let p = this.norms.get(n);
    if (!p) {
      p = this.gate.run(async () => (await neuronNorms(s, this.pca.mean.data, [n]))[0]);
      p.catch(() => this.norms.delete(n));
      this.norms.set(n, p);
    }
    const norms = await p;
    const h = histogram(norms, 16);
    return {
      ...base,
      top: topImages(norms, kArg).map((row) => ({ row, id: s.itemId(row), norm: round(norms[row]) })),
      histogram: { lo: round(h.lo), hi: round(h.hi), counts: h.counts },
      significant: Array.from(norms).filter((v) => Math.fround(v) > this.tau[n]).length,
      images: s.B,
    };
  }

  thumbPath(rowArg: unknown): string {
    const s = this.needStore();
    const row = typeof rowArg === 'string' && /^\d+$/.test(rowArg) ? Number(rowArg) : -1;
    if (row < 0 || row >= s.B) throw new HttpError(400, `row must be an integer in 0..${s.B - 1}`);
    if (!existsSync(s.manifest.dataset.root)) throw new HttpError(404, `the neuron store's dataset root ${s.manifest.dataset.root} is not readable here`);
    return safeResolve(s.manifest.dataset.root, s.itemId(row), { encoded: false });
  }

  private uploadFactors(id: string, pixels: () => F32): Promise<NeuronFactors> {
    let f = this.factors.get(id);
    if (!f) {
      f = this.gate.run(() => this.effects.factors(pixels(), 1));
      f.catch(() => this.factors.delete(id));
      this.factors.set(id, f);
    }
    return f;
  }

  /** The neuron's activation at every patch of an upload, and its second-order effect there. */
  async map(nArg: unknown, id: string, pixels: () => F32) {
    const n = this.checkNeuron(nArg);
    const { grid, tokens: N, hidden: M } = this.model.dims();
    const act = (await this.gate.run(() => this.model.runVision(pixels(), [`mlp_post_${this.layer}`], 1, neuronVariant([this.layer]))))[`mlp_post_${this.layer}`].data;
    const patches = Array.from({ length: N - 1 }, (_, t) => round(act[(t + 1) * M + n]));
    const f = await this.uploadFactors(id, pixels);
    const r = await this.effects.getReadout();
    const e = await rebuildImage(r, f.coef.data, f.offset.data, n, n + 1);
    const norm = centredNorms(e, 1, n, 1, r.d, this.pca.mean.data)[0];
    return { id, neuron: n, layer: this.layer, grid, cls: round(act[n]), patches, norm: round(norm), tau: round(this.tau[n]), significant: Math.fround(norm) > this.tau[n] };
  }

  /** Concepts in an upload: the texts its significant neurons vote for (concept_discovery.ipynb). */
  async concepts(id: string, pixels: () => F32, top = 10) {
    if (!this.descriptions) throw new HttpError(404, 'no neuron descriptions loaded: start the server with --neuron-descriptions FILE (cliplens neurons describe --out)');
    const f = await this.uploadFactors(id, pixels);
    const r = await this.effects.getReadout();
    const E = await rebuildImage(r, f.coef.data, f.offset.data);
    await tick();
    const c = discoverConcepts(centredNorms(E, 1, 0, this.M, r.d, this.pca.mean.data), this.tau, this.descriptions, top);
    return { id, layer: this.layer, significant: c.significant.length, concepts: c.concepts.map((x) => ({ text: x.text, score: round(x.score) })) };
  }
}
