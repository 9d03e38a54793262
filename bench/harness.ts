// What the benchmark workers share: time a mode, alone or in rounds alternating with plain
// encoding (the median per-round ratio: machine speed drifts by ±10% between runs, which
// separate processes would mistake for the mode's cost), and print one JSON line with peak RSS.

const timed = async (f: () => Promise<void>) => {
  const t0 = performance.now();
  await f();
  return (performance.now() - t0) / 1000;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

export async function measure(mode: string, B: number, repeats: number, vsPlain: boolean, run: () => Promise<void>, plain: () => Promise<void>): Promise<void> {
  await run(); // warm-up: graph build, pre-packing, folding
  if (vsPlain) {
    await plain();
    const ratios: number[] = [];
    const rates: number[] = [];
    for (let i = 0; i < repeats; i++) {
      const tp = await timed(plain);
      const tm = await timed(run);
      ratios.push(tp / tm);
      rates.push(B / tm);
    }
    console.log(JSON.stringify({ mode, batch: B, imagesPerSecond: median(rates), ofPlain: median(ratios), peakRssMB: process.resourceUsage().maxRSS / 1024 }));
    return;
  }
  let seconds = 0;
  for (let i = 0; i < repeats; i++) seconds += await timed(run);
  seconds /= repeats;
  console.log(JSON.stringify({ mode, batch: B, imagesPerSecond: B / seconds, peakRssMB: process.resourceUsage().maxRSS / 1024 }));
}
