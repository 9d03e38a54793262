// Publish a toy-world study report into docs/: the hand-written discussion above the marker in
// docs/study-toyworld.md is kept, the generated report below it is replaced, and its figures are
// copied to docs/study-toyworld/figures so the page's pictures work on a fresh clone.
//   npm run study:toyworld && node --import tsx tools/publish_toyworld_study.ts

import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const MARKER = '<!-- everything below is generated: npm run study:toyworld && node --import tsx tools/publish_toyworld_study.ts -->';
const src = process.argv[2] ?? 'out/study-toyworld';
const doc = 'docs/study-toyworld.md';
const figs = 'docs/study-toyworld/figures';

if (!existsSync(join(src, 'report.md'))) {
  console.error(`no report in ${src}; run npm run study:toyworld first`);
  process.exit(1);
}
const old = existsSync(doc) ? readFileSync(doc, 'utf8') : '';
const at = old.indexOf(MARKER);
if (old && at < 0) {
  // Never drop hand-written text: the marker says where the generated part starts.
  console.error(`${doc} has no marker line; put this line where the generated report should start:\n${MARKER}`);
  process.exit(1);
}
const preamble = at >= 0 ? old.slice(0, at) : '# Toy-world study\n\n';
rmSync(figs, { recursive: true, force: true });
mkdirSync(figs, { recursive: true });
for (const f of readdirSync(join(src, 'figures'))) if (f.endsWith('.png')) copyFileSync(join(src, 'figures', f), join(figs, f));
const report = readFileSync(join(src, 'report.md'), 'utf8').replace(/\]\(figures\//g, '](study-toyworld/figures/');
// The report's own headings move one level down under the page's title.
const demoted = report
  .split('\n')
  .map((l) => (/^#{1,5} /.test(l) ? `#${l}` : l))
  .join('\n');
writeFileSync(doc, `${preamble}${MARKER}\n\n${demoted}`);
console.log(`wrote ${doc} and ${readdirSync(figs).length} figures in ${figs}`);
