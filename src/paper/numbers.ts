// The paper's published numbers (assets/paper/paper_numbers.json) and which of its models a
// loaded model is, so the report can put each measured number next to the published one.

import { readFileSync } from 'node:fs';
import { assetPath } from '../assets.ts';

export interface PaperNumber {
  model: string;
  experiment: string;
  method: string;
  metric: string;
  value: number;
  table: string | null;
  where: string;
  via: string;
}

export interface PaperModel {
  key: string;
  arch: string;
  pretrained: string;
  hub: string;
}

export interface PaperNumbers {
  paper: string;
  provenance: string;
  models: PaperModel[];
  numbers: PaperNumber[];
  referenceHeads: { source: string } & Record<string, { geo: [number, number][]; setting: [number, number][] } | string>;
}

let cache: PaperNumbers | undefined;

export function paperNumbers(): PaperNumbers {
  cache ??= JSON.parse(readFileSync(assetPath('assets', 'paper', 'paper_numbers.json'), 'utf8')) as PaperNumbers;
  return cache;
}

const squash = (s: string) => s.toLowerCase().replace(/^hf-hub:/, '').replace(/[^a-z0-9]/g, '');

/** The paper model a loaded model's name refers to (open_clip name + tag, or its hub repository), if any. */
export function paperModelOf(modelName: string): PaperModel | undefined {
  const n = squash(modelName);
  return paperNumbers().models.find((m) => n.includes(squash(m.arch + m.pretrained)) || n.includes(squash(m.hub)));
}

/** Published value of (experiment, method, metric) for the model, in %, if the paper has it. */
export function publishedValue(modelName: string, experiment: string, method: string, metric: string): PaperNumber | undefined {
  const m = paperModelOf(modelName);
  if (!m) return undefined;
  return paperNumbers().numbers.find((x) => x.model === m.key && x.experiment === experiment && x.method === method && x.metric === metric);
}

/** The heads the authors ablate for Waterbirds on this model (compute_use_specific_heads.py), if it is one of theirs. */
export function referenceWaterbirdsHeads(modelName: string): { layer: number; head: number }[] | undefined {
  const m = paperModelOf(modelName);
  const r = m ? paperNumbers().referenceHeads[m.key] : undefined;
  if (!r || typeof r === 'string') return undefined;
  return [...r.geo, ...r.setting].map(([layer, head]) => ({ layer, head }));
}
