// The source tree's import graph: data flows one way (a module imports only from layers below
// its own or from its own folder), there are no import cycles, and the CLI's entry point
// reaches none of the heavy modules (so `cliplens --version` stays fast).

import './helpers/env.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'src');

/** Layers from the bottom up; a file in src/ itself (errors, tensor, rng, assets, notation) is the base. */
const LAYERS = ['.', 'web', 'toyworld', 'io', 'model', 'graph', 'runtime', 'decompose', 'analyses', 'neurons', 'report', 'toyworld_study', 'paper', 'api', 'server', 'cli', 'index.ts'];
const HEAVY = ['onnxruntime-node', 'sharp', 'h5wasm'];

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Static imports and re-exports (type-only ones included: they still couple the layers). */
function importsOf(file: string): { local: string[]; packages: string[] } {
  const src = readFileSync(file, 'utf8');
  const specs = [...src.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+['"]([^'"]+)['"]/gms), ...src.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]);
  return {
    local: specs.filter((s) => s.startsWith('.')).map((s) => resolve(dirname(file), s)),
    packages: specs.filter((s) => !s.startsWith('.') && !s.startsWith('node:')),
  };
}

function layerOf(file: string): { name: string; rank: number } {
  const rel = relative(SRC, file).split('\\').join('/');
  const name = rel === 'index.ts' ? 'index.ts' : rel.includes('/') ? rel.split('/')[0] : '.';
  const rank = LAYERS.indexOf(name);
  assert.ok(rank >= 0, `src/${rel} is in no layer: add its folder to LAYERS in test/layers.test.ts`);
  return { name, rank };
}

const files = walk(SRC);
const graph = new Map(files.map((f) => [f, importsOf(f)]));

test('no module imports from a layer above its own', () => {
  const upward: string[] = [];
  for (const [file, { local }] of graph) {
    const from = layerOf(file);
    for (const target of local) {
      const to = layerOf(target);
      if (to.name !== from.name && to.rank >= from.rank) upward.push(`src/${relative(SRC, file)} → src/${relative(SRC, target)}`);
    }
  }
  assert.deepEqual(upward, [], `imports that reach upward (layers bottom-up: ${LAYERS.join(' → ')})`);
});

test('the web bundle imports only its own folder and the base', () => {
  for (const [file, { local, packages }] of graph) {
    if (layerOf(file).name !== 'web') continue;
    assert.deepEqual(packages, [], `${file} imports packages`);
    for (const t of local) assert.ok(['web', '.'].includes(layerOf(t).name), `${file} imports ${t}`);
  }
});

test('no import cycles between source files', () => {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') assert.fail(`import cycle: ${[...stack.slice(stack.indexOf(f)), f].map((x) => relative(SRC, x)).join(' → ')}`);
    state.set(f, 'open');
    stack.push(f);
    for (const t of graph.get(f)?.local ?? []) visit(t);
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of files) visit(f);
});

test("the CLI entry point reaches no heavy module through static imports", () => {
  const seen = new Set<string>();
  const heavy: string[] = [];
  const visit = (f: string) => {
    if (seen.has(f)) return;
    seen.add(f);
    const g = graph.get(f);
    assert.ok(g, `missing source ${f}`);
    for (const p of g.packages) if (HEAVY.includes(p)) heavy.push(`${relative(SRC, f)} imports ${p}`);
    for (const t of g.local) visit(t);
  };
  visit(join(SRC, 'cli', 'main.ts'));
  assert.deepEqual(heavy, []);
});

test('every test file imports test/helpers/env.ts first (clean environment, its own temporary directory)', () => {
  const TEST = resolve(SRC, '..', 'test');
  const files = readdirSync(TEST).filter((f) => f.endsWith('.test.ts'));
  assert.ok(files.length > 10);
  const late = files.filter((f) => !/^import\s+'\.\/helpers\/env\.ts';/.test(readFileSync(join(TEST, f), 'utf8').replace(/^(\s*\/\/.*\n|\s*\n)*/, '')));
  assert.deepEqual(late, [], `import './helpers/env.ts' as the first import of: ${late.join(', ')}`);
});
