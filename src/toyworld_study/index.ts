// The toy-world study and demo: the paper's experiments on cliplens' own CLIP, whose scenes'
// ground truth is known.

export { balancedSet, DEMO_SEED, labelIndices, sceneSet, scenePixels, STUDY_SEED, subset, type SceneSet } from './data.ts';
export { attributePool, DISTRACTORS, embedTexts, familyClassifier, familyClassifiers, OTHER, shapeColorCaption, shapeColorCaptions, type AttributePool } from './texts.ts';
export { headsByFamily, labelHead, labelHeads, type HeadLabel, type HeadLabelOptions } from './heads.ts';
export { layerAblation, zeroShot, type FamilyAblation } from './ablation.ts';
export { chanceLevel, propertyRetrieval, type HeadRetrieval, type RetrievalResult } from './retrieval.ts';
export { SEG_METHODS, segmentationStudy, uniformBaseline, type SegExample, type SegMethod, type SegmentationStudy } from './segmentation.ts';
export { backgroundHeads, spuriousStudy, type SpuriousCell, type SpuriousStudy } from './spurious.ts';
export { runToyworldStudy, type ToyworldScenes, type ToyworldSettings, type ToyworldStudy, type ToyworldStudyOptions } from './study.ts';
export { studyReport } from './report.ts';
export { runDemo, type DemoOptions, type DemoResult } from './demo.ts';
