// Neuron view: search the neurons of one MLP block by text (or number), read a neuron's texts,
// its top store images and the distribution of its second-order effect, and see where it fires
// on an uploaded image, with the concepts the image's significant neurons describe.

import { api, barChart, busy, debounce, drawMapOverlay, el, fmt, latest, toast, type Info } from './ui.ts';

interface Hit {
  neuron: number;
  score: number | null;
  texts: { index: number; coef: number; text: string }[];
}

interface Card {
  neuron: number;
  layer: number;
  tau: number;
  texts: { index: number; coef: number; text: string }[];
  top: { row: number; id: string; norm: number }[];
  histogram: null | { lo: number; hi: number; counts: number[] };
  significant: number | null;
  images?: number;
}

interface NeuronMap {
  neuron: number;
  grid: number;
  patches: number[];
  norm: number;
  tau: number;
  significant: boolean;
}

const CANVAS = 336;

export function neuronView(root: HTMLElement, info: Info) {
  const nv = info.neurons;
  if (!nv) {
    root.append(el('div.card.notice', {}, 'No neurons loaded. Start the server with ', el('code', {}, '--neurons PCS.safetensors'), ' (from ', el('code', {}, 'cliplens neurons pca'), '), optionally ', el('code', {}, '--neuron-descriptions'), ' and ', el('code', {}, '--neuron-store'), '.'));
    return { show() {} };
  }
  let current: number | undefined;
  let upload: { id: string; image: string } | undefined;
  let img: HTMLImageElement | undefined;

  const query = el('input#neuron-query', { type: 'search', placeholder: 'a text (e.g. “a striped pattern”) or a neuron number', style: { width: '100%' } });
  const results = el('div#neuron-results.neuron-list');
  const searchCard = el('div.card', {}, el('h2', {}, `Neurons of MLP block ${nv.layer}`, el('span.sub', {}, `${nv.neurons} neurons, ranked by |first PC · text|`)), query, results);

  const hint = el('div.muted', {}, 'Search, then pick a neuron.');
  const detail = el('div#neuron-detail');
  const detailCard = el('div.card', { style: { position: 'relative' } }, hint, detail);

  const fileInput = el('input#neuron-file-input', { type: 'file', accept: 'image/png,image/jpeg,image/webp,image/gif', hidden: true });
  const choose = el('button.btn.ghost', { onclick: () => fileInput.click() }, 'Choose an image');
  const canvas = el('canvas#neuron-canvas', { width: CANVAS, height: CANVAS, hidden: true });
  const mapInfo = el('div.small#neuron-map-info');
  const concepts = el('ol#neuron-concepts.small');
  const imageCard = el('div.card', { style: { position: 'relative' } }, el('h2', {}, 'On your image', el('span.sub', {}, 'where the neuron fires; the concepts of its significant neurons')), el('div.row', {}, choose), canvas, mapInfo, concepts, fileInput);

  root.append(el('div.grid2', {}, el('div', {}, searchCard, imageCard), detailCard));

  const fetchHits = latest((q: string) => api<{ neurons: Hit[] }>('/api/neurons/search', { q, k: 12 }));
  async function search(): Promise<void> {
    const q = query.value.trim();
    if (!q) return;
    try {
      const r = await busy(searchCard, 'Searching…', fetchHits(q));
      if (!r) return;
      results.replaceChildren(
        ...r.neurons.map((h) =>
          el(
            'button.neuron-card',
            { 'data-neuron': h.neuron, onclick: () => void open(h.neuron) },
            el('strong', {}, `#${h.neuron}`),
            h.score !== null ? el('span.muted', {}, ` ${fmt(h.score, 3)}`) : null,
            el('span.chips', {}, ...h.texts.slice(0, 4).map((t) => el(`span.chip.${t.coef < 0 ? 'neg' : 'pos'}`, {}, t.text))),
          ),
        ),
      );
    } catch {
      /* toast shown */
    }
  }

  async function open(n: number): Promise<void> {
    current = n;
    for (const b of Array.from(results.querySelectorAll<HTMLElement>('.neuron-card'))) b.classList.toggle('active', Number(b.dataset.neuron) === n);
    try {
      const c = await busy(detailCard, 'Reading the neuron…', api<Card>(`/api/neurons/${n}?k=12`));
      render(c);
    } catch {
      return;
    }
    await drawMap();
  }

  function render(c: Card): void {
    hint.remove();
    const texts = [...c.texts].sort((a, b) => b.coef - a.coef);
    const hi = Math.max(1e-12, ...texts.map((t) => Math.abs(t.coef)));
    const parts: (HTMLElement | null)[] = [
      el('h2', {}, `Neuron ${c.neuron}`, el('span.sub', {}, `MLP block ${c.layer} · τ = ${fmt(c.tau, 4)}${c.significant !== null ? ` · significant in ${c.significant} of ${c.images} images` : ''}`)),
      texts.length
        ? el('table#neuron-texts.texts', {}, ...texts.map((t) => el('tr', {}, el('td', {}, t.text), el('td.num', {}, fmt(t.coef, 4)), el('td', {}, el(`span.bar.${t.coef < 0 ? 'neg' : 'pos'}`, { style: { width: `${(80 * Math.abs(t.coef)) / hi}px` } })))))
        : el('div.muted', {}, 'No descriptions loaded (--neuron-descriptions).'),
      c.histogram
        ? el('div#neuron-hist', {}, el('div.muted.small', {}, 'centred norms over the store images'), barChart(c.histogram.counts.map((_, i) => fmt(c.histogram!.lo + ((i + 0.5) * (c.histogram!.hi - c.histogram!.lo)) / c.histogram!.counts.length, 2)), [{ name: 'images', color: '#2f6fde', values: c.histogram.counts }], { height: 160, yLabel: 'images' }))
        : null,
      c.top.length
        ? el('div#neuron-top.thumbs', {}, ...c.top.map((t) => el('div.thumb', { 'data-row': t.row }, nv!.store?.hasImages ? el('img', { src: `/api/neurons/thumb/${t.row}?size=160`, alt: t.id, title: t.id, loading: 'lazy' }) : el('div.ph', { title: t.id }), el('span', {}, fmt(t.norm, 3)))))
        : el('div.muted', {}, 'No neuron store loaded (--neuron-store): no top images.'),
    ];
    detail.replaceChildren(...parts.filter((p): p is HTMLElement => p !== null));
  }

  async function drawMap(): Promise<void> {
    if (!upload || !img || current === undefined) return;
    try {
      const m = await busy(imageCard, 'Mapping the neuron…', api<NeuronMap>(`/api/neurons/${current}/map`, { id: upload.id }));
      canvas.hidden = false;
      const { lo, hi } = drawMapOverlay(canvas, img, m.patches, m.grid, { alpha: 0.6 });
      mapInfo.textContent = `neuron ${m.neuron}: activation ${fmt(lo, 3)} … ${fmt(hi, 3)}; second-order effect ${fmt(m.norm, 4)} (τ ${fmt(m.tau, 4)}, ${m.significant ? 'significant' : 'not significant'})`;
    } catch {
      /* toast shown */
    }
  }

  fileInput.addEventListener('change', async () => {
    const file = fileInput.files?.[0];
    if (!file) return;
    if (file.size > info.maxUpload) return toast(`${file.name} is too large for the server`);
    try {
      upload = await busy(imageCard, 'Running the model…', api<{ id: string; image: string }>('/api/upload', file));
      const im = new Image();
      im.src = upload.image;
      await im.decode();
      img = im;
      canvas.hidden = false;
      canvas.getContext('2d')!.drawImage(im, 0, 0, CANVAS, CANVAS);
      if (nv.descriptions) {
        const c = await busy(imageCard, 'Reading its neurons…', api<{ significant: number; concepts: { text: string; score: number }[] }>('/api/neurons/concepts', { id: upload.id }));
        concepts.replaceChildren(el('div.muted', {}, `${c.significant} significant neurons; concepts:`), ...c.concepts.map((x) => el('li', {}, `${x.text} `, el('span.muted', {}, fmt(x.score, 3)))));
      }
      await drawMap();
    } catch {
      /* toast shown */
    }
  });
  query.addEventListener('input', debounce(() => void search(), 250));
  query.addEventListener('keydown', (e) => e.key === 'Enter' && void search());
  return { show() {} };
}
