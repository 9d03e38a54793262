// Types shared by the paper plan and its report: the sections, the context a report needs, and
// what each step records.

import type { DebiasStudyResult, HeadMatch } from '../analyses/debias.ts';
import type { RetrievalStudyResult } from '../analyses/retrieval_study.ts';
import type { TextSpanStudyResult } from '../analyses/textspan_study.ts';
import type { HeadRef } from '../notation.ts';
import type { JointHead } from '../analyses/spatial_studies.ts';
import type { ModelId } from './plan.ts';
import type { PaperProfile } from './profile.ts';

export interface PaperData {
  /** ImageNet (val) in class folders. */
  imagenet?: string;
  /** Waterbirds' folder (metadata.csv + images). */
  waterbirds?: string;
  /** ImageNet-segmentation's gtsegs_ijcv.mat. */
  imagenetSeg?: string;
  /** Pictures for the joint (cat/dog) figure. */
  images?: string;
}

export const SECTIONS = {
  ablation: '§3 Mean-ablation',
  textspan: '§4 TextSpan',
  waterbirds: '§5 Spurious cues (Waterbirds)',
  retrieval: '§5 Property-based retrieval',
  segmentation: '§6 Zero-shot segmentation',
  joint: '§6 Joint decomposition',
} as const;
export type SectionId = keyof typeof SECTIONS;

export interface SkippedSection {
  section: SectionId;
  reason: string;
}

/** What the report needs besides the step results. */
export interface PaperContext {
  model: ModelId;
  spuriousModel: ModelId;
  profile: PaperProfile;
  work: string;
  out: string;
  data: { [K in keyof PaperData]?: { path: string; standIn: boolean } };
  skipped: SkippedSection[];
  settings: { limit?: number; draws: number; seed: number; batchSize: number };
}

// Step results (what steps/<id>.json hold)

export interface FileResult {
  file: string;
}
export interface StoreResult {
  dir: string;
  images: number;
  failed: { id: string; error: string }[];
}
export interface StandInResult {
  files: string[];
  imagenet: string;
  waterbirds: string;
  imagenetSeg: string;
  images: string;
}
export interface TextSpanStepResult {
  result: TextSpanStudyResult;
  heads: string;
  pool: { name: string; size: number; source: string };
  topImages: { layer: number; head: number; text: string; images: { row: number; id: string; score: number }[] }[];
}
export interface WaterbirdsResult {
  query: string;
  selection: HeadMatch[];
  textspanSource: string;
  result?: DebiasStudyResult;
  reference?: { heads: HeadRef[]; result: DebiasStudyResult; source: string };
  notes: string[];
}
export interface RetrievalResult {
  properties: { name: string; query: string; head?: HeadMatch; views: RetrievalStudyResult[] }[];
  store: string;
}
export interface JointResult {
  grid: number;
  texts: [string, string];
  images: { file: string; maps: { text: string; full: number[]; heads: (Omit<JointHead, 'map'> & { map: number[] })[] }[] }[];
}

