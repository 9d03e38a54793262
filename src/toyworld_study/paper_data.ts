// Toy-world stand-ins for the paper's datasets, laid out on disk exactly as the real ones are,
// so `cliplens paper --model toyworld` runs the same code paths as a real run, offline:
//   imagenet/<shape>/<i>.png            class folders (ImageNet val in folder layout), labelled by shape
//   waterbirds/metadata.csv + images    the Waterbirds CSV (img_id, img_filename, y, split, place,
//                                       place_filename); y = circle (0) / square (1), place =
//                                       plain (0) / striped (1): each shape's own background in
//                                       models/toyworld-correlated, as land and water are for birds.
//                                       split 2 (test) is balanced over (y, place); split 0 is
//                                       correlated like the training data.
//   imagenet_seg/gtsegs_ijcv.mat        scenes and their object masks in the MATLAB v7.3 layout
//   images/pair_<i>.png                 "cat and dog" pictures: a circle on the left, a square on
//                                       the right, on one plain background
// Every file is a pure function of (size, counts, seed).

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { atomicWrite } from '../io/files.ts';
import { writeSegmentationMat } from '../io/segmentation_mat.ts';
import { encodePng } from '../report/figures.ts';
import { ATTRIBUTES, generateScene, mixSeed, partnerValue, sceneSeed, type Scene } from '../toyworld/index.ts';
import { ToyworldError } from '../errors.ts';

export const PAPER_DATA_SEED = 0x9a9e12;

/** The two Waterbirds classes and places of the stand-in (index = y and place). */
export const WATERBIRDS_CLASSES = ['circle', 'square'];
export const WATERBIRDS_PLACES = WATERBIRDS_CLASSES.map((s) => partnerValue('shape', 'background', s));

/** The two texts of the joint figure ("an image of a dog" / "a cat" for real photos). */
export const PAIR_TEXTS = ['an image of a circle', 'an image of a square'];

export interface ToyStandInOptions {
  /** Image size of the model (48..512). */
  size: number;
  /** Scenes of the ImageNet stand-in (default 400). */
  imagenet?: number;
  /** Test scenes per (y, place) group of the Waterbirds stand-in (default 50). */
  waterbirdsPerGroup?: number;
  /** Scenes with masks in the segmentation file (default 100). */
  segmentation?: number;
  /** Two-object pictures for the joint figure (default 3). */
  pairs?: number;
  seed?: number;
}

export interface ToyStandIns {
  imagenet: string;
  waterbirds: string;
  imagenetSeg: string;
  images: string;
  /** Every file written, relative to the folder. */
  files: string[];
}

/** The first scenes of a seeded stream that satisfy `want`, `count` of them. */
function scenesWhere(seed: number, size: number, count: number, want: (s: Scene) => boolean): Scene[] {
  const out: Scene[] = [];
  for (let i = 0; out.length < count; i++) {
    if (i > count * 500 + 1000) throw new ToyworldError('could not draw the stand-in scenes');
    const s = generateScene(sceneSeed(seed, i), { size });
    if (want(s)) out.push(s);
  }
  return out;
}

const png = (s: { image: Uint8Array; size: number }) => encodePng({ rgb: s.image, width: s.size, height: s.size });

export async function writeToyStandIns(dir: string, opts: ToyStandInOptions): Promise<ToyStandIns> {
  const S = opts.size;
  const seed = opts.seed ?? PAPER_DATA_SEED;
  const files: string[] = [];
  const put = async (rel: string, data: Buffer | string) => {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    atomicWrite(join(dir, rel), data);
    files.push(rel);
  };

  // ImageNet: class folders by shape.
  const n = opts.imagenet ?? 400;
  for (let i = 0; i < n; i++) {
    const s = generateScene(sceneSeed(mixSeed(seed, 1), i), { size: S });
    await put(`imagenet/${s.labels.shape}/${String(i).padStart(5, '0')}.png`, await png(s));
  }

  // Waterbirds: a balanced test split and a correlated train split, in the real metadata.csv layout.
  const per = opts.waterbirdsPerGroup ?? 50;
  const rows = ['img_id,img_filename,y,split,place,place_filename'];
  let id = 0;
  const wb = async (s: Scene, split: number) => {
    const y = WATERBIRDS_CLASSES.indexOf(s.labels.shape);
    const place = WATERBIRDS_PLACES.indexOf(s.labels.background);
    const file = `${String(y + 1).padStart(3, '0')}.${s.labels.shape}/${s.labels.shape}_${String(id).padStart(5, '0')}.png`;
    await put(`waterbirds/${file}`, await png(s));
    rows.push(`${id + 1},${file},${y},${split},${place},/${s.labels.background}/${String(id).padStart(5, '0')}.png`);
    id++;
  };
  for (const [y, shape] of WATERBIRDS_CLASSES.entries())
    for (const [p, bg] of WATERBIRDS_PLACES.entries()) {
      for (const s of scenesWhere(mixSeed(seed, 10 + 2 * y + p), S, per, (s) => s.labels.shape === shape && s.labels.background === bg)) await wb(s, 2);
      // Train split: the majority groups (shape on its own place) 9× the minority ones.
      for (const s of scenesWhere(mixSeed(seed, 20 + 2 * y + p), S, y === p ? 9 : 1, (s) => s.labels.shape === shape && s.labels.background === bg)) await wb(s, 0);
    }
  await put('waterbirds/metadata.csv', `${rows.join('\n')}\n`);

  // ImageNet-segmentation: scenes and masks in the .mat layout.
  const nSeg = opts.segmentation ?? 100;
  const seg = Array.from({ length: nSeg }, (_, i) => generateScene(sceneSeed(mixSeed(seed, 3), i), { size: S }));
  mkdirSync(join(dir, 'imagenet_seg'), { recursive: true });
  await writeSegmentationMat(join(dir, 'imagenet_seg', 'gtsegs_ijcv.mat'), seg.map((s) => ({ width: S, height: S, rgb: s.image, mask: s.mask })));
  files.push('imagenet_seg/gtsegs_ijcv.mat');

  // Pairs: the left half of a one-circle-on-the-left scene beside the right half of a
  // one-square-on-the-right scene, both plain.
  const pairs = opts.pairs ?? 3;
  const one = (shape: string, position: string) => (s: Scene) => s.labels.shape === shape && s.labels.position === position && s.labels.count === 'one' && s.labels.size === 'large' && s.labels.background === 'plain';
  const lefts = scenesWhere(mixSeed(seed, 4), S, pairs, one(ATTRIBUTES.shape[0], 'left'));
  const rights = scenesWhere(mixSeed(seed, 5), S, pairs, one(ATTRIBUTES.shape[1], 'right'));
  for (let i = 0; i < pairs; i++) {
    const image = new Uint8Array(S * S * 3);
    for (let y = 0; y < S; y++)
      for (let x = 0; x < S; x++) {
        const src = x < S / 2 ? lefts[i] : rights[i];
        const o = (y * S + x) * 3;
        image.set(src.image.subarray(o, o + 3), o);
      }
    await put(`images/pair_${i}.png`, await png({ image, size: S }));
  }
  return { imagenet: join(dir, 'imagenet'), waterbirds: join(dir, 'waterbirds'), imagenetSeg: join(dir, 'imagenet_seg', 'gtsegs_ijcv.mat'), images: join(dir, 'images'), files };
}
