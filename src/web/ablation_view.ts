// Ablation playground: toggle heads off (mean-ablated over the store) and watch zero-shot
// accuracy, per group, change.

import { headName } from '../notation.ts';
import { api, busy, debounce, el, latest, pctLabel, thumb, type Info, type StoreItem } from './ui.ts';

interface Summary {
  overall: number;
  mean: number;
  worst: number;
  cells: { label: string; group: string | null; count: number; correct: number; accuracy: number }[];
}

interface Result {
  n: number;
  classes: string[];
  template: string;
  baseline: Summary;
  result: Summary;
  changed: number;
  examples: (StoreItem & { before: string; after: string })[];
}

export function ablationView(root: HTMLElement, info: Info) {
  const store = info.store;
  if (!store) {
    root.append(el('div.card.notice', {}, 'No store loaded. Start the server with ', el('code', {}, '--store DIR'), ' to classify its images zero-shot and ablate heads.'));
    return { show() {} };
  }
  if (!store.classes.length) {
    root.append(el('div.card.notice', {}, 'The store has no labels, so there is nothing to classify.'));
    return { show() {} };
  }
  const H = info.model.H;
  const off = new Set<string>();
  const mlps = el('input#abl-mlps', { type: 'checkbox' });
  const grid = el('div.heads-grid#abl-grid', { style: { gridTemplateColumns: `auto repeat(${H}, 40px)` } });
  const buttons = new Map<string, HTMLButtonElement>();
  grid.append(el('span', {}), ...Array.from({ length: H }, (_, h) => el('span.collab', {}, `H${h}`)));
  for (const l of store.layers) {
    const lab = el('span.rowlab', { title: 'toggle the whole layer' }, `L${l}`);
    lab.addEventListener('click', () => {
      const all = Array.from({ length: H }, (_, h) => off.has(`${l}.${h}`)).every(Boolean);
      for (let h = 0; h < H; h++) set(l, h, !all);
      changed();
    });
    grid.append(lab);
    for (let h = 0; h < H; h++) {
      const b = el('button', { 'data-head': `${l}.${h}`, title: headName({ layer: l, head: h }) }, String(h));
      b.addEventListener('click', () => {
        set(l, h, !off.has(`${l}.${h}`));
        changed();
      });
      buttons.set(`${l}.${h}`, b);
      grid.append(b);
    }
  }
  function set(l: number, h: number, isOff: boolean) {
    const k = `${l}.${h}`;
    if (isOff) off.add(k);
    else off.delete(k);
    buttons.get(k)!.classList.toggle('off', isOff);
  }
  const reset = el('button.btn.ghost', {}, 'Reset');
  reset.addEventListener('click', () => {
    for (const k of [...off]) set(Number(k.split('.')[0]), Number(k.split('.')[1]), false);
    mlps.checked = false;
    changed();
  });
  const status = el('span.muted.small#abl-status', {}, '');
  const ctrl = el(
    'div.card',
    {},
    el('h2', {}, 'Heads', el('span.sub', {}, 'click to mean-ablate (dark = off); click a layer label for the whole layer')),
    grid,
    el('div.row', { style: { marginTop: '12px' } }, el('label', {}, mlps, ' also mean-ablate all MLPs'), reset, status),
  );
  const results = el('div#abl-results', { style: { position: 'relative', minHeight: '120px' } });
  root.append(el('div.grid2', {}, ctrl, results));

  const fetchAbl = latest((body: unknown) => api<Result>('/api/ablation', body));
  async function run(): Promise<void> {
    const heads = [...off].map((k) => k.split('.').map(Number));
    try {
      const r = await busy(results, 'Classifying the store…', fetchAbl({ heads, mlps: mlps.checked }));
      if (r) render(r);
    } catch {
      /* toast shown */
    }
  }
  const changed = debounce(() => void run(), 150);
  mlps.addEventListener('change', changed);

  function stat(name: string, a: number, b: number) {
    const d = b - a;
    return el('div.stat', {}, el('div.k', {}, name), el('div', {}, el('span.v', {}, pctLabel(b)), el('span.d', { class: d > 1e-9 ? 'd up' : d < -1e-9 ? 'd down' : 'd muted' }, `${d >= 0 ? '+' : ''}${(d * 100).toFixed(1)}`)), el('div.small.muted', {}, `baseline ${pctLabel(a)}`));
  }

  function render(r: Result): void {
    status.textContent = `${off.size} head${off.size === 1 ? '' : 's'} off${mlps.checked ? ' + MLPs' : ''}`;
    const hasGroups = r.result.cells.some((c) => c.group !== null);
    results.replaceChildren(
      el(
        'div.card#abl-summary',
        {},
        el('h2', {}, 'Zero-shot accuracy', el('span.sub', {}, `${r.n} images · ${r.classes.length} classes · prompt “${r.template.replace('{}', '{label}')}”`)),
        el('div.stats', {}, stat('overall', r.baseline.overall, r.result.overall), stat(hasGroups ? 'mean over groups' : 'mean over classes', r.baseline.mean, r.result.mean), stat(hasGroups ? 'worst group' : 'worst class', r.baseline.worst, r.result.worst)),
      ),
      el(
        'div.card',
        {},
        el('h2', {}, hasGroups ? 'Per group' : 'Per class'),
        el(
          'table.plain#abl-cells',
          {},
          el('tr', {}, el('th', {}, 'class'), hasGroups ? el('th', {}, 'group') : null, el('th', {}, 'n'), el('th', {}, 'baseline'), el('th', {}, 'ablated'), el('th', {}, 'Δ')),
          ...r.result.cells.map((c, i) => {
            const b = r.baseline.cells[i]?.accuracy ?? 0;
            const d = c.accuracy - b;
            return el('tr', {}, el('td', {}, c.label), hasGroups ? el('td', {}, c.group ?? '') : null, el('td', {}, c.count), el('td', {}, pctLabel(b)), el('td', {}, pctLabel(c.accuracy)), el('td', { class: d > 1e-9 ? 'up' : d < -1e-9 ? 'down' : 'muted' }, `${d >= 0 ? '+' : ''}${(d * 100).toFixed(1)}`));
          }),
        ),
      ),
      el(
        'div.card',
        {},
        el('h2', {}, 'Changed predictions', el('span.sub', {}, `${r.changed} of ${r.n}`)),
        r.examples.length ? el('div.thumbs', {}, ...r.examples.map((e) => thumb(e, store!.hasImages, `${e.before} → ${e.after}`))) : el('div.muted.small', {}, 'none'),
      ),
    );
  }

  let loaded = false;
  return {
    show() {
      if (!loaded) {
        loaded = true;
        void run();
      }
    },
  };
}
