// The demo's scenes as an explorer workspace: PNGs with scenes.csv (label = shape, group =
// background, as Waterbirds has bird type and place), a decomposition store of them, and the
// TextSpan heads as heads.json, so that
//   cliplens serve --store <out>/store --textspan <out>/heads.json
// explores the same scenes: retrieval by head, head catalogue, worst-group ablation playground.

import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { modelProvenance, provenanceFields } from '../io/provenance.ts';
import { join, resolve } from 'node:path';
import { decomposeDataset } from '../decompose/dataset_job.ts';
import { loadDataset } from '../io/datasets.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { encodePng } from '../report/figures.ts';
import type { Scene } from '../toyworld/index.ts';
import type { HeadLabel } from './heads.ts';

export interface ExplorerData {
  scenesCsv: string;
  store: string;
  textspan: string;
  /** The command that opens it. */
  serve: string;
}

export async function writeExplorerData(model: ClipModel, scenes: Scene[], heads: HeadLabel[], outDir: string): Promise<ExplorerData> {
  const sceneDir = join(outDir, 'scenes');
  const storeDir = join(outDir, 'store');
  // Ours to regenerate: a store from an earlier demo with another model would be refused.
  rmSync(sceneDir, { recursive: true, force: true });
  rmSync(storeDir, { recursive: true, force: true });
  mkdirSync(sceneDir, { recursive: true });
  const width = String(scenes.length - 1).length;
  const rows = ['path,label,group'];
  await Promise.all(
    scenes.map(async (s, i) => {
      const name = `${String(i).padStart(width, '0')}.png`;
      writeFileSync(join(sceneDir, name), await encodePng({ rgb: s.image, width: s.size, height: s.size }));
    }),
  );
  scenes.forEach((s, i) => rows.push(`${String(i).padStart(width, '0')}.png,${s.labels.shape},${s.labels.background}`));
  const scenesCsv = join(sceneDir, 'scenes.csv');
  writeFileSync(scenesCsv, `${rows.join('\n')}\n`);
  const job = await decomposeDataset(model, loadDataset(scenesCsv), { storeDir, batchSize: 32 });
  if (!job.complete || job.failed.length) throw new Error(`demo store ${storeDir} is incomplete (${job.failed.length} scenes failed)`);
  const textspan = join(outDir, 'heads.json');
  const json = {
    ...provenanceFields(modelProvenance(model)),
    heads: heads.map((h) => ({ layer: h.layer, head: h.head, texts: h.texts, varianceExplained: h.varianceExplained, family: h.family, purity: h.purity })),
  };
  writeFileSync(textspan, `${JSON.stringify(json, null, 1)}\n`);
  const modelFlag = model.name === 'toyworld' ? '' : ` --model ${model.name}`;
  return { scenesCsv, store: storeDir, textspan, serve: `npx cliplens serve${modelFlag} --store ${resolve(storeDir)} --textspan ${resolve(textspan)}` };
}
