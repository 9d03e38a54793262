// Entry point: read /api/info, build the views, switch tabs by the URL hash.

import { ablationView } from './ablation_view.ts';
import { headsView } from './heads_view.ts';
import { imageView } from './image_view.ts';
import { neuronView } from './neuron_view.ts';
import { retrievalView } from './retrieval_view.ts';
import { api, toast, type Info } from './ui.ts';

const TABS = ['image', 'heads', 'retrieval', 'ablation', 'neurons'] as const;
type Tab = (typeof TABS)[number];

async function main(): Promise<void> {
  let info: Info;
  try {
    info = await api<Info>('/api/info');
  } catch (e) {
    document.getElementById('model-info')!.textContent = 'server unreachable';
    toast(`cannot reach the server: ${(e as Error).message}`);
    return;
  }
  const m = info.model;
  document.getElementById('model-info')!.textContent =
    `model ${m.name} (${m.familyLabel}) · ${m.L === 1 ? m.blockNames[0] : `${m.L} layers`} × ${m.H} heads · ${m.grid}×${m.grid} patches` + (info.store ? ` · store: ${info.store.n} images` : '') + (info.textspan ? ` · ${info.textspan.heads} TextSpan heads` : '') + (info.neurons ? ` · neurons of MLP ${info.neurons.layer}` : '');
  const views: Record<Tab, { show(): void }> = {
    image: imageView(document.getElementById('tab-image')!, info),
    heads: headsView(document.getElementById('tab-heads')!, info),
    retrieval: retrievalView(document.getElementById('tab-retrieval')!, info),
    ablation: ablationView(document.getElementById('tab-ablation')!, info),
    neurons: neuronView(document.getElementById('tab-neurons')!, info),
  };
  const select = (tab: Tab) => {
    for (const t of TABS) {
      document.getElementById(`tab-${t}`)!.classList.toggle('active', t === tab);
      document.querySelector(`[data-tab=${t}]`)!.classList.toggle('active', t === tab);
    }
    views[tab].show();
  };
  for (const b of Array.from(document.querySelectorAll<HTMLButtonElement>('[data-tab]'))) {
    b.addEventListener('click', () => {
      location.hash = b.dataset.tab!;
    });
  }
  const fromHash = () => select((TABS as readonly string[]).includes(location.hash.slice(1)) ? (location.hash.slice(1) as Tab) : 'image');
  window.addEventListener('hashchange', fromHash);
  fromHash();
  document.body.dataset.ready = '1';
}

void main();
