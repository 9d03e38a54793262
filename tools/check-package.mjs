#!/usr/bin/env node
// The package as a user gets it (run by .ci/run after npm test): npm pack, install the tarball
// into an empty folder, then
//   (a) plain Node: import { loadModel } from 'cliplens', encode a photo → a tensor [1, d];
//   (b) a TypeScript file using the public types type-checks under tsc's Node ESM settings;
//   (c) the installed `cliplens --help` and `cliplens demo` work;
//   (d) the tarball holds only dist/, bin/, assets/, models/, README.md, LICENSE, package.json.
// Needs the npm registry (or its cache) for the tarball's dependencies, typescript and @types/node.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const work = mkdtempSync(join(tmpdir(), 'cliplens-package-'));
const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' };
for (const key of Object.keys(env)) if (/^(CLIPLENS_|HF_)/.test(key)) delete env[key];
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const run = (cmd, args, cwd, opts = {}) => execFileSync(cmd, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], ...opts });
const step = (what) => process.stderr.write(`check-package: ${what}\n`);
const fail = (what) => {
  process.stderr.write(`check-package: FAILED: ${what}\n`);
  process.exit(1);
};

// (d) what the tarball holds
step('npm pack');
const [pack] = JSON.parse(run(npm, ['pack', '--json', '--pack-destination', work], root));
const allowed = /^(dist\/|bin\/|assets\/|models\/|README\.md$|LICENSE$|package\.json$)/;
const stray = pack.files.map((f) => f.path).filter((p) => !allowed.test(p) || /(^|\/)(test|tests|tools|bench|fixtures)(\/|$)/.test(p));
if (stray.length) fail(`the tarball holds files a user does not need: ${stray.slice(0, 10).join(', ')}`);
if (!pack.files.some((f) => f.path === 'dist/index.d.ts')) fail('the tarball has no dist/index.d.ts');
console.log(`tarball ${pack.filename}: ${(pack.size / 1e6).toFixed(1)} MB, ${pack.entryCount} files (${(pack.unpackedSize / 1e6).toFixed(1)} MB unpacked)`);

// Install it, with typescript and @types/node at the versions the repository uses.
const app = join(work, 'app');
execFileSync('mkdir', ['-p', app]);
writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'cliplens-user', private: true, type: 'module' }, null, 2));
const version = (name) => JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version;
step('npm install the tarball into an empty folder');
run(npm, ['install', '--prefer-offline', '--no-audit', '--no-fund', join(work, pack.filename), `typescript@${version('typescript')}`, `@types/node@${version('@types/node')}`], app, { stdio: ['ignore', 'ignore', 'inherit'] });

// (a) plain Node
step('plain Node: loadModel, encodeImages');
writeFileSync(
  join(app, 'photo.mjs'),
  `import sharp from 'sharp';
const w = 96, h = 72, rgb = Buffer.alloc(w * h * 3);
for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) rgb.set([x < 48 ? 220 : 30, 40, y < 36 ? 200 : 60], (y * w + x) * 3);
await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).png().toFile('photo.png');
`,
);
run(process.execPath, ['photo.mjs'], app);
writeFileSync(
  join(app, 'use.mjs'),
  `import { loadModel } from 'cliplens';
const model = await loadModel();
const f = await model.encodeImages(['photo.png']);
console.log(JSON.stringify({ shape: f.shape, dtype: f.dtype, isFloat32Array: f.data instanceof Float32Array, length: f.data.length, finite: f.data.every(Number.isFinite), first: Array.from(f.data.slice(0, 3)) }));
`,
);
const used = JSON.parse(run(process.execPath, ['use.mjs'], app).trim().split('\n').pop());
const d = JSON.parse(readFileSync(join(app, 'node_modules', 'cliplens', 'models', 'toyworld', 'open_clip_config.json'), 'utf8')).model_cfg.embed_dim;
if (JSON.stringify(used.shape) !== JSON.stringify([1, d]) || !used.isFloat32Array || used.length !== d || !used.finite) fail(`encodeImages gave ${JSON.stringify(used)}, expected a finite Float32Array tensor of shape [1, ${d}]`);
console.log(`plain Node: model.encodeImages(['photo.png']) → ${JSON.stringify(used)}`);

// (b) the public types under tsc's Node ESM settings
step('tsc --module nodenext --strict on a file using the public types');
writeFileSync(
  join(app, 'check.ts'),
  `import { loadModel, CliplensError, ImageDecodeError, headName, type Model, type F32, type Tensor, type Decomposition, type TextSet, type StoreData } from 'cliplens';

async function main(): Promise<void> {
  const model: Model = await loadModel('toyworld', { threads: 1 });
  const f: F32 = await model.encodeImages(['photo.png'], { batchSize: 1 });
  const t: Tensor<Float32Array> = await model.encodeTexts(['a red square']);
  const terms: Decomposition = await model.decompose([new Uint8Array(0)], { spatial: false });
  const maps: F32 = await model.textMaps(['photo.png'], ['a red square'], { layers: [0], heads: [1] });
  const pool: TextSet = await model.textPool(['a red square']);
  const size: number = f.shape[1] + t.shape[0] + terms.attn.shape[0] + maps.data.length + pool.names.length + model.dims.L;
  const name: string = headName({ layer: 10, head: 3 });
  let store: StoreData | undefined;
  try {
    await model.encodeImages(['missing.png']);
  } catch (e) {
    if (e instanceof ImageDecodeError) console.log(e.code, e.file);
    if (e instanceof CliplensError) console.log(e.code satisfies string);
  }
  console.log(size, name, store);
}
void main();
`,
);
run(join(app, 'node_modules', '.bin', 'tsc'), ['--noEmit', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--strict', 'check.ts'], app, { stdio: ['ignore', 'inherit', 'inherit'] });
console.log('TypeScript: a file using the public types type-checks (tsc --module nodenext --strict)');

// (c) the installed CLI
step('the installed cliplens --help and cliplens demo');
const cli = join(app, 'node_modules', '.bin', 'cliplens');
const help = run(cli, ['--help'], app);
if (!/Usage: cliplens/.test(help) || !/demo/.test(help)) fail(`cliplens --help printed:\n${help}`);
const cliVersion = run(cli, ["--version"], app).trim();
const demo = run(cli, ['demo'], app);
if (!/zero-shot accuracy per attribute family/.test(demo)) fail(`cliplens demo printed:\n${demo}`);
console.log(`installed CLI: cliplens --version ${cliVersion}; --help lists the commands; demo ran (${demo.trim().split('\n').length} lines)`);

rmSync(work, { recursive: true, force: true });
console.log('check-package: the package works as a user gets it');
