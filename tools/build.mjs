#!/usr/bin/env node
// Build the package: TypeScript → dist/ (ES modules + .d.ts), the explorer's browser code bundled
// into dist/web/ with esbuild. Run by `npm run build` and by `npm ci`/`npm install` (prepare).

import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const require = createRequire(import.meta.url);

rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });

// Declarations keep the sources' relative '.ts' specifiers; point them at the emitted '.js'.
const walk = (dir) => readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? walk(join(dir, f)) : [join(dir, f)]));
for (const f of walk(dist).filter((f) => f.endsWith('.d.ts'))) {
  const s = readFileSync(f, 'utf8');
  const t = s.replace(/(from\s+|import\()(['"])(\.{1,2}\/[^'"]+)\.ts\2/g, '$1$2$3.js$2');
  if (t !== s) writeFileSync(f, t);
}

// The explorer: one browser bundle plus its page and style sheet.
const { build } = await import('esbuild');
const web = join(dist, 'web');
mkdirSync(web, { recursive: true });
await build({
  entryPoints: [join(root, 'src/web/app.ts')],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  legalComments: 'none',
  outfile: join(web, 'app.js'),
  logLevel: 'warning',
});
copyFileSync(join(root, 'src/web/index.html'), join(web, 'index.html'));
copyFileSync(join(root, 'src/web/style.css'), join(web, 'style.css'));
process.stderr.write('built dist/ (library, CLI, explorer bundle)\n');
