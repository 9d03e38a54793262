// Test files in the layout of ImageNet-segmentation's gtsegs_ijcv.mat: the writer lives in
// src/io/segmentation_mat.ts (the toy world's stand-in dataset uses it too).

export { writeSegmentationMat, type MatScene } from '../../src/io/segmentation_mat.ts';
