// Image view: upload an image, see its embedding's decomposition per layer / head, and where in
// the image each text (or the difference of two texts) is read.

import { api, barChart, busy, css, divColor, drawMapOverlay, el, fmt, latest, legend, options, seqColor, toast, type Info } from './ui.ts';

interface Upload {
  id: string;
  size: number;
  image: string;
}

interface Decomp {
  texts: string[];
  norm: number;
  attn: { norm: number[]; proj: number[][] };
  mlp: { norm: number[]; proj: number[][] };
  heads: { norm: number[][]; proj: number[][][] };
  similarity: number[];
}

interface Heat {
  grid: number;
  maps: { text: string; cls: number | null; patches: number[] }[];
}

const DEFAULT_TEXTS = 'a red circle\na blue square';
const CANVAS = 448;

export function imageView(root: HTMLElement, info: Info) {
  const { L, H } = info.model;
  let upload: Upload | undefined;
  let img: HTMLImageElement | undefined;
  let heat: Heat | undefined;
  let dec: Decomp | undefined;

  const fileInput = el('input', { type: 'file', accept: 'image/png,image/jpeg,image/webp,image/gif', hidden: true, id: 'file-input' });
  const drop = el('div.drop#drop', { tabindex: 0 }, el('strong', {}, 'Drop an image here'), el('span', {}, 'or click to choose a file (PNG, JPEG, WebP, GIF)'));
  const canvas = el('canvas#heatmap', { width: CANVAS, height: CANVAS });
  const wrap = el('div.canvas-wrap', { hidden: true }, canvas);
  const barCanvas = el('canvas', { width: 200, height: 10 });
  const barLo = el('span', {}, '');
  const barHi = el('span', {}, '');
  const colorbar = el('div.colorbar', { hidden: true }, barLo, barCanvas, barHi);
  const another = el('button.btn.ghost', { hidden: true, onclick: () => fileInput.click() }, 'Choose another image');
  const imageCard = el('div.card', {}, el('h2', {}, 'Image', el('span.sub', {}, 'the centre crop the model sees')), drop, wrap, colorbar, el('div.row', { style: { marginTop: '10px' } }, another), fileInput);

  const textsArea = el('textarea#texts', { rows: 3, spellcheck: false }, DEFAULT_TEXTS);
  const applyBtn = el('button.btn#apply-texts', { onclick: () => void refresh() }, 'Apply texts');
  const mapSelect = el('select#map-select', { onchange: () => draw() });
  const layerSelect = el('select#layer-select', { onchange: () => void loadHeat() });
  const headSelect = el('select#head-select', { onchange: () => void loadHeat() });
  options(layerSelect, [['all', L === 1 ? info.model.blockNames[0] : 'all layers'], ...(L === 1 ? [] : Array.from({ length: L }, (_, l): [string, string] => [String(l), info.model.blockNames[l]]))]);
  options(headSelect, [['all', 'all heads'], ...Array.from({ length: H }, (_, h): [string, string] => [String(h), `head ${h}`])]);
  const opacity = el('input', { type: 'range', min: 0, max: 100, value: 60, oninput: () => draw() });
  const heatCard = el(
    'div.card',
    {},
    el('h2', {}, 'Texts', el('span.sub', {}, 'one per line; each text’s direct contribution per patch')),
    textsArea,
    el('div.row', { style: { marginTop: '8px' } }, applyBtn),
    el('div.row', { style: { marginTop: '10px' } }, el('label.field', {}, 'show', mapSelect), el('label.field', {}, 'layer', layerSelect), el('label.field', {}, 'head', headSelect), el('label.field', {}, 'overlay', opacity)),
  );

  const simBox = el('div.sims#similarity');
  const simCard = el('div.card', {}, el('h2', {}, 'Similarity', el('span.sub', {}, 'cos(image, text)')), simBox);
  const modeSelect = el('select#contrib-mode', { onchange: () => renderDecomp() });
  const layerChart = el('div#layer-chart');
  const layerCard = el('div.card', {}, el('h2', {}, 'Contribution per layer', el('span.sub', {}, 'direct effect on the normalised embedding')), el('div.row', {}, el('label.field', {}, 'measure', modeSelect), legend([{ name: 'attention (Σ heads)', color: '#2f6fde' }, { name: 'MLP', color: '#e8893a' }])), layerChart);
  const headRange = el('select#head-range', { onchange: () => renderDecomp() });
  options(headRange, L > 4 ? [['4', 'last 4 layers'], ['all', 'all layers']] : [['all', 'all layers']]);
  const headTable = el('div#head-matrix');
  const headCard = el('div.card', {}, el('h2', {}, 'Per head', el('span.sub', {}, 'same measure, each head’s term')), el('div.row', {}, el('label.field', {}, 'layers', headRange)), headTable);
  const placeholder = el('div.card.notice#decomp-empty', {}, 'Upload an image to see how its embedding is made of per-layer and per-head terms.');
  const right = el('div', { style: { position: 'relative' } }, placeholder);
  root.append(el('div.grid2', {}, el('div', {}, imageCard, heatCard), right));

  // ---------------------------------------------------------------- upload
  const onFile = async (file: File | undefined) => {
    if (!file) return;
    if (file.size > info.maxUpload) {
      toast(`${file.name} is ${(file.size / 1048576).toFixed(1)} MB; the server accepts up to ${(info.maxUpload / 1048576).toFixed(1)} MB`);
      return;
    }
    try {
      upload = await busy(imageCard, 'Running the model…', api<Upload>('/api/upload', file));
    } catch {
      return;
    }
    const im = new Image();
    im.src = upload.image;
    await im.decode();
    img = im;
    heat = undefined;
    drop.hidden = true;
    wrap.hidden = false;
    another.hidden = false;
    draw();
    await refresh();
  };
  fileInput.addEventListener('change', () => void onFile(fileInput.files?.[0]));
  drop.addEventListener('click', () => fileInput.click());
  drop.addEventListener('keydown', (e) => (e.key === 'Enter' || e.key === ' ') && fileInput.click());
  for (const t of [drop, wrap]) {
    t.addEventListener('dragover', (e) => {
      e.preventDefault();
      drop.classList.add('hover');
    });
    t.addEventListener('dragleave', () => drop.classList.remove('hover'));
    t.addEventListener('drop', (e) => {
      e.preventDefault();
      drop.classList.remove('hover');
      void onFile(e.dataTransfer?.files?.[0]);
    });
  }

  const texts = () =>
    textsArea.value
      .split('\n')
      .map((t) => t.trim())
      .filter(Boolean)
      .slice(0, info.maxTexts);

  // ---------------------------------------------------------------- heatmap
  const fetchHeat = latest((body: unknown) => api<Heat>('/api/heatmap', body));
  async function loadHeat(): Promise<void> {
    if (!upload) return;
    const ts = texts();
    if (!ts.length) {
      toast('enter at least one text');
      return;
    }
    try {
      const r = await busy(imageCard, 'Computing heatmaps…', fetchHeat({ id: upload.id, texts: ts, layer: layerSelect.value, head: headSelect.value }));
      if (!r) return;
      const prev = mapSelect.value;
      const opts: [string, string][] = r.maps.map((m, i) => [`t${i}`, m.text]);
      for (let i = 0; i < Math.min(r.maps.length, 4); i++)
        for (let j = 0; j < Math.min(r.maps.length, 4); j++) if (i !== j) opts.push([`d${i}-${j}`, `${r.maps[i].text} − ${r.maps[j].text}`]);
      options(mapSelect, opts, prev);
      heat = r;
      draw();
    } catch {
      /* toast shown */
    }
  }

  function currentMap(): { values: number[]; diverging: boolean } | undefined {
    if (!heat) return undefined;
    const v = mapSelect.value;
    const d = /^d(\d+)-(\d+)$/.exec(v);
    if (d) {
      const a = heat.maps[+d[1]];
      const b = heat.maps[+d[2]];
      if (a && b) return { values: a.patches.map((x, i) => x - b.patches[i]), diverging: true };
    }
    const t = heat.maps[Number(v.slice(1))] ?? heat.maps[0];
    return { values: t.patches, diverging: false };
  }

  function draw(): void {
    const ctx = canvas.getContext('2d')!;
    ctx.clearRect(0, 0, CANVAS, CANVAS);
    if (!img) return;
    ctx.drawImage(img, 0, 0, CANVAS, CANVAS);
    const m = currentMap();
    if (!m || !heat) {
      colorbar.hidden = true;
      return;
    }
    const { lo, hi } = drawMapOverlay(canvas, img, m.values, heat.grid, { diverging: m.diverging, alpha: Number(opacity.value) / 100 });
    // Colour bar.
    const bctx = barCanvas.getContext('2d')!;
    for (let x = 0; x < 200; x++) {
      bctx.fillStyle = css(m.diverging ? divColor((x / 199) * 2 - 1) : seqColor(x / 199));
      bctx.fillRect(x, 0, 1, 10);
    }
    barLo.textContent = fmt(lo, 4);
    barHi.textContent = fmt(hi, 4);
    colorbar.hidden = false;
  }

  // ---------------------------------------------------------------- decomposition
  const fetchDec = latest((body: unknown) => api<Decomp>('/api/decompose', body));
  async function loadDecomp(): Promise<void> {
    if (!upload) return;
    if (placeholder.isConnected) right.replaceChildren(simCard, layerCard, headCard);
    try {
      const r = await busy(right, 'Decomposing…', fetchDec({ id: upload.id, texts: texts() }));
      if (!r) return;
      dec = r;
      const prev = modeSelect.value;
      options(modeSelect, [['norm', 'norm ‖term‖'], ...r.texts.map((t, i): [string, string] => [`p${i}`, `projection on “${t}”`])], prev);
      renderDecomp();
    } catch {
      /* toast shown */
    }
  }

  function renderDecomp(): void {
    if (!dec) return;
    const d = dec;
    const maxSim = Math.max(1e-9, ...d.similarity.map(Math.abs));
    simBox.replaceChildren(
      ...d.texts.flatMap((t, i) => [el('span', {}, t), el('div.bar', {}, el('i', { style: { width: `${(Math.max(0, d.similarity[i]) / maxSim) * 100}%` } })), el('span', {}, fmt(d.similarity[i], 4))]),
    );
    if (!d.texts.length) simBox.replaceChildren(el('span.muted', {}, 'enter texts to compare'));
    const mode = modeSelect.value || 'norm';
    const t = mode === 'norm' ? -1 : Number(mode.slice(1));
    const attn = t < 0 ? d.attn.norm : d.attn.proj[t];
    const mlp = t < 0 ? d.mlp.norm : d.mlp.proj[t];
    const cats = info.model.chartLabels;
    layerChart.replaceChildren(
      barChart(cats, [
        { name: 'attention', color: '#2f6fde', values: [null, ...attn] },
        { name: 'MLP', color: '#e8893a', values: mlp },
      ], { yLabel: t < 0 ? 'norm' : 'projection' }),
    );
    const heads = t < 0 ? d.heads.norm : d.heads.proj[t];
    const from = headRange.value === 'all' ? 0 : Math.max(0, L - Number(headRange.value));
    const rows = heads.slice(from);
    const maxAbs = Math.max(1e-9, ...rows.flat().map(Math.abs));
    const cell = (v: number) => {
      const c = t < 0 ? seqColor(0.15 + 0.7 * (v / maxAbs)) : divColor(v / maxAbs);
      const light = t < 0 ? false : Math.abs(v / maxAbs) < 0.55;
      return el('td', { style: { background: css(c), color: light ? '#1d232b' : '#fff' }, title: fmt(v, 5) }, fmt(v, 3));
    };
    headTable.replaceChildren(
      el(
        'table.matrix',
        {},
        el('tr', {}, el('th', {}, ''), ...Array.from({ length: H }, (_, h) => el('th', {}, `H${h}`))),
        ...rows.map((r, i) => el('tr', {}, el('th', {}, `L${from + i}`), ...r.map(cell))),
      ),
    );
  }

  async function refresh(): Promise<void> {
    await Promise.all([loadHeat(), loadDecomp()]);
  }

  return { show() {} };
}
