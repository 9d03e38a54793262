// What the analyses need to know about a model family, without its graphs (so store-only
// commands do not load ONNX Runtime). src/model/family.ts adds the graphs and text feeds.

import type { FamilyId } from './config.ts';

export interface FamilyInfo {
  id: FamilyId;
  /** For people: "CLIP", "SigLIP". */
  label: string;
  /** Whether decomposition terms are divided by ‖z‖ unless asked otherwise (the reference's convention). */
  normalisedTerms: boolean;
  /** TextSpan's rank r for terms of size d, as the family's reference script calls it. */
  textspanRank(d: number): number;
  /** Names a head spec may use for an attention block (CLIP: layer numbers only; SigLIP: 'pool' for its pooling head). */
  blockAliases: Record<string, number>;
}

export const CLIP_INFO: FamilyInfo = { id: 'clip', label: 'CLIP', normalisedTerms: true, textspanRank: () => 80, blockAliases: {} };
export const SIGLIP_INFO: FamilyInfo = { id: 'siglip', label: 'SigLIP', normalisedTerms: false, textspanRank: (d) => d, blockAliases: { pool: 0, p: 0 } };

/** A store's or config's family (absent: CLIP, which every store before SigLIP support holds). */
export function familyInfo(id: FamilyId | undefined): FamilyInfo {
  return id === 'siglip' ? SIGLIP_INFO : CLIP_INFO;
}
