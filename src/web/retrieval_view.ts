// Retrieval: pick a store image, or upload any image (decomposed by the served model, the
// store's), and a head; its nearest neighbours by that head's term next to the nearest by the
// whole embedding.

import { headName } from '../notation.ts';
import { api, busy, el, options, thumb, toast, type Info, type StoreItem } from './ui.ts';

interface Result {
  query: StoreItem | { id: string; upload: true };
  layer: number;
  head: number;
  score: 'cosine' | 'dot';
  byHead: StoreItem[];
  whole: StoreItem[];
}

const PAGE = 48;

export function retrievalView(root: HTMLElement, info: Info) {
  const store = info.store;
  if (!store) {
    root.append(el('div.card.notice', {}, 'No store loaded. Start the server with ', el('code', {}, '--store DIR'), ' (made by ', el('code', {}, 'cliplens decompose --dataset …'), ').'));
    return { show() {} };
  }
  let offset = 0;
  let selected: number | undefined;
  /** An uploaded query image (id and its picture), when one was chosen last. */
  let uploaded: { id: string; image: string } | undefined;
  const picker = el('div.picker#store-picker');
  const pageInfo = el('span.muted.small', {}, '');
  const prev = el('button.btn.ghost', { onclick: () => void page(offset - PAGE) }, '‹ prev');
  const next = el('button.btn.ghost', { onclick: () => void page(offset + PAGE) }, 'next ›');
  const fileInput = el('input#ret-file', { type: 'file', accept: 'image/*' }) as HTMLInputElement;
  fileInput.addEventListener('change', () => void uploadQuery(fileInput.files?.[0]));
  const pickCard = el(
    'div.card',
    {},
    el('h2', {}, 'Query image', el('span.sub', {}, 'click one, or use an image of your own')),
    picker,
    el('div.row', { style: { marginTop: '10px' } }, prev, next, pageInfo),
    el('div.row', { style: { marginTop: '10px' } }, el('label.field', {}, 'your image (decomposed by the store’s model)', fileInput)),
  );

  const layerSel = el('select#ret-layer');
  const headSel = el('select#ret-head');
  options(layerSel, store.layers.map((l): [string, string] => [String(l), `layer ${l}`]), String(store.layers[store.layers.length - 1]));
  options(headSel, Array.from({ length: info.model.H }, (_, h): [string, string] => [String(h), `head ${h}`]));
  const kInput = el('input#ret-k', { type: 'number', min: 1, max: Math.min(50, store.n - 1), value: Math.min(8, store.n - 1), style: { width: '70px' } });
  const run = el('button.btn#ret-run', { disabled: true, onclick: () => void search() }, 'Find neighbours');
  const ctrl = el('div.card', {}, el('h2', {}, 'Neighbours'), el('div.row', {}, el('label.field', {}, 'layer', layerSel), el('label.field', {}, 'head', headSel), el('label.field', {}, 'k', kInput), run));
  const results = el('div#ret-results', { style: { position: 'relative' } });
  root.append(el('div.grid2', {}, pickCard, el('div', {}, ctrl, results)));

  async function page(o: number): Promise<void> {
    offset = Math.max(0, Math.min(o, Math.max(0, store!.n - 1)));
    try {
      const r = await busy(pickCard, 'Loading…', api<{ total: number; items: StoreItem[] }>(`/api/store/items?offset=${offset}&limit=${PAGE}`));
      picker.replaceChildren(
        ...r.items.map((it) => {
          const b = el('button', { 'data-row': it.row, title: `${it.id}${it.label ? ` (${it.label})` : ''}`, class: it.row === selected ? 'sel' : undefined }, store!.hasImages ? el('img', { src: `/api/store/thumb/${it.row}?size=144`, alt: it.id, loading: 'lazy' }) : el('span', {}, String(it.row)));
          b.addEventListener('click', () => {
            selected = it.row;
            uploaded = undefined;
            for (const x of Array.from(picker.querySelectorAll('button'))) x.classList.toggle('sel', x === b);
            run.disabled = false;
            void search();
          });
          return b;
        }),
      );
      pageInfo.textContent = `${offset + 1}–${offset + r.items.length} of ${r.total}`;
      prev.disabled = offset === 0;
      next.disabled = offset + PAGE >= r.total;
    } catch {
      /* toast shown */
    }
  }

  async function uploadQuery(file: File | undefined): Promise<void> {
    if (!file) return;
    if (file.size > info.maxUpload) {
      toast(`${file.name} is ${(file.size / 1048576).toFixed(1)} MB; the server accepts up to ${(info.maxUpload / 1048576).toFixed(1)} MB`);
      return;
    }
    try {
      uploaded = await busy(pickCard, 'Running the model…', api<{ id: string; image: string }>('/api/upload', file));
    } catch {
      return;
    }
    selected = undefined;
    for (const x of Array.from(picker.querySelectorAll('button'))) x.classList.remove('sel');
    run.disabled = false;
    await search();
  }

  async function search(): Promise<void> {
    if (selected === undefined && !uploaded) return;
    const query = uploaded ? { id: uploaded.id } : { row: selected };
    try {
      const r = await busy(results.isConnected && results.childElementCount ? results : ctrl, 'Searching…', api<Result>('/api/retrieval', { ...query, layer: Number(layerSel.value), head: Number(headSel.value), k: Number(kInput.value) }));
      const short = r.score === 'dot' ? 'dot' : 'cos';
      const section = (title: string, items: StoreItem[], id: string) =>
        el('div.card', { id }, el('h2', {}, title), el('div.thumbs', {}, ...items.map((it) => thumb(it, store!.hasImages, `${short} ${it.score?.toFixed(3)}`))));
      const q = r.query;
      results.replaceChildren(
        el('div.card', {}, el('h2', {}, 'Query'), el('div.thumbs', {}, 'upload' in q ? el('div.thumb', {}, el('img', { src: uploaded!.image, alt: 'your image' }), el('span.lab', {}, 'your image')) : thumb(q, store!.hasImages, q.id))),
        section(`By head ${headName(r)}`, r.byHead, 'ret-byhead'),
        section('By the whole embedding', r.whole, 'ret-whole'),
      );
    } catch {
      /* toast shown */
    }
  }

  for (const s of [layerSel, headSel, kInput]) s.addEventListener('change', () => void search());
  let loaded = false;
  return {
    show() {
      if (!loaded) {
        loaded = true;
        void page(0);
      }
    },
  };
}
