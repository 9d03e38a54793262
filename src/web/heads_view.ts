// Head catalogue: one card per TextSpan head with its texts; opening a card shows the store
// images whose head term projects most on the head's first text.

import { headName } from '../notation.ts';
import { api, busy, debounce, el, latest, thumb, toast, type Info, type StoreItem } from './ui.ts';

interface Card {
  layer: number;
  head: number;
  texts: string[];
  varianceExplained?: number[];
  topImages: boolean;
}

interface Top {
  text: string;
  images: StoreItem[];
}

export function headsView(root: HTMLElement, info: Info) {
  if (!info.textspan) {
    root.append(
      el('div.card.notice', {}, 'No TextSpan result loaded. Start the server with ', el('code', {}, '--textspan FILE'), ' (JSON: ', el('code', {}, '{ "heads": [{ "layer", "head", "texts": [...] }] }'), ').'),
    );
    return { show() {} };
  }
  const filter = el('input#head-filter', { type: 'search', placeholder: 'filter by text, e.g. colour, location, or L5.H2', style: { width: '340px' } });
  const count = el('span.muted.small', {}, '');
  const grid = el('div.cards#head-cards');
  const wrapper = el('div', { style: { position: 'relative', minHeight: '80px' } }, grid);
  root.append(el('div.card', {}, el('div.row', {}, filter, count)), wrapper);
  let loaded = false;

  const fetchHeads = latest((q: string) => api<{ total: number; heads: Card[] }>(`/api/heads?q=${encodeURIComponent(q)}`));
  async function load(): Promise<void> {
    const q = filter.value.trim();
    try {
      const r = await busy(wrapper, 'Loading heads…', fetchHeads(q));
      if (!r) return;
      count.textContent = q ? `${r.heads.length} of ${r.total} heads match` : `${r.total} heads`;
      grid.replaceChildren(...r.heads.map((h) => card(h, q.toLowerCase())));
      if (!r.heads.length) grid.append(el('div.muted', {}, 'no head has a text containing that'));
    } catch {
      /* toast shown */
    }
  }

  function highlight(text: string, q: string): (Node | string)[] {
    const i = q ? text.toLowerCase().indexOf(q) : -1;
    if (i < 0) return [text];
    return [text.slice(0, i), el('mark', {}, text.slice(i, i + q.length)), text.slice(i + q.length)];
  }

  function card(h: Card, q: string): HTMLElement {
    const ve = h.varianceExplained;
    const list = el('ol', {}, ...h.texts.map((t, i) => el('li', {}, ...highlight(t, q), ve?.[i] !== undefined ? el('span.ve', { title: 'cumulative variance explained' }, `${(ve[i] * 100).toFixed(1)}%`) : null)));
    const top = el('div.thumbs');
    const btn = el('button.btn.ghost', { 'data-action': 'top', disabled: !h.topImages, title: h.topImages ? 'store images with the largest projection on the first text' : 'needs a --store that keeps this layer' }, 'Top images');
    const c = el('div.head-card', { 'data-head': `${h.layer}.${h.head}` }, el('h3', {}, headName(h), btn), list, top);
    let open = false;
    btn.addEventListener('click', async () => {
      open = !open;
      c.classList.toggle('open', open);
      if (!open) {
        top.replaceChildren();
        return;
      }
      c.style.position = 'relative';
      try {
        const r = await busy(c, 'Ranking store images…', api<Top>(`/api/heads/${h.layer}/${h.head}/top?k=8`));
        top.replaceChildren(el('div.muted.small', { style: { width: '100%' } }, `largest projection on “${r.text}”`), ...r.images.map((it) => thumb(it, info.store?.hasImages ?? false, it.score?.toFixed(3))));
      } catch {
        open = false;
        c.classList.remove('open');
      }
    });
    return c;
  }

  filter.addEventListener('input', debounce(() => void load(), 200));
  return {
    show() {
      if (!loaded) {
        loaded = true;
        load().catch((e) => toast(String(e)));
      }
    },
  };
}
