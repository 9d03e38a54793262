import { resolve } from 'node:path';
import { Command } from 'commander';
import cliProgress from 'cli-progress';
import { planPaper, runPaper } from '../paper/paper.ts';
import type { PlanEvent, PlannedStep } from '../paper/plan.ts';
import { SECTIONS } from '../paper/types.ts';
import { modelFromFlags, parseIntFlag, withModelOptions, type ModelFlags } from './common.ts';

interface PaperFlags extends ModelFlags {
  out: string;
  imagenet?: string;
  waterbirds?: string;
  imagenetSeg?: string;
  images?: string;
  limit?: string;
  draws: string;
  seed: string;
  batchSize: string;
  classes?: string;
  templates?: string;
  planOnly?: boolean;
  standIns: boolean;
}

const human = (s: number) => (s < 90 ? `${s.toFixed(s < 10 ? 1 : 0)} s` : s < 5400 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(1)} h`);
const bytes = (b: number) => (b < 1e6 ? `${(b / 1e3).toFixed(0)} kB` : b < 1e9 ? `${(b / 1e6).toFixed(1)} MB` : `${(b / 1e9).toFixed(2)} GB`);

function printPlan(steps: PlannedStep[], write: (s: string) => void): void {
  const todo = steps.filter((s) => !s.cached);
  const w = Math.max(...steps.map((s) => s.title.length), 10);
  write(`plan: ${steps.length} steps, ${steps.length - todo.length} already done\n`);
  for (const [i, s] of steps.entries()) {
    const est = s.cached ? 'cached' : `~${human(s.estimate.seconds)}, ${bytes(s.estimate.bytes)}`;
    write(`  ${String(i + 1).padStart(2)}. ${s.title.padEnd(w)}  ${est}\n`);
  }
  const sec = todo.reduce((a, s) => a + s.estimate.seconds, 0);
  const disk = todo.reduce((a, s) => a + s.estimate.bytes, 0);
  write(`estimate: ~${human(sec)} and ${bytes(disk)} on disk for the ${todo.length} steps to run (calibrated on this machine)\n`);
}

/** One progress display over the whole plan: a bar on a terminal, a line every few seconds otherwise. */
function planProgress(): { on(e: PlanEvent): void; stop(): void } {
  const t0 = Date.now();
  const eta = (overall: number) => (overall > 0.01 ? human(((Date.now() - t0) / 1000) * (1 / overall - 1)) : '?');
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar({ format: 'paper [{bar}] {percentage}% | {step} | ETA {eta}', hideCursor: true, stream: process.stderr }, cliProgress.Presets.shades_classic);
    bar.start(1000, 0, { step: '', eta: '?' });
    return {
      on(e) {
        const overall = e.type === 'start' ? undefined : e.overall;
        const label = `${e.type === 'start' || e.type === 'done' ? e.index + 1 : ''}${e.type === 'start' ? `/${e.count}` : ''} ${e.step.title.slice(0, 50)}`;
        bar.update(overall === undefined ? bar.getProgress() * 1000 : Math.round(overall * 1000), { step: label, eta: overall === undefined ? '?' : eta(overall) });
      },
      stop: () => bar.stop(),
    };
  }
  let last = 0;
  return {
    on(e) {
      if (e.type === 'start') process.stderr.write(`paper: step ${e.index + 1}/${e.count}: ${e.step.title}\n`);
      else if (e.type === 'done') process.stderr.write(`paper: ${e.cached ? 'reused' : `done in ${e.seconds.toFixed(1)} s`} (${(100 * e.overall).toFixed(0)}% of the plan, ETA ${eta(e.overall)})\n`);
      else if (Date.now() - last > 5000) {
        last = Date.now();
        process.stderr.write(`paper: ${(100 * e.fraction).toFixed(0)}% of '${e.step.title}' (${(100 * e.overall).toFixed(0)}% of the plan, ETA ${eta(e.overall)})${e.note ? ` ${e.note}` : ''}\n`);
      }
    },
    stop() {},
  };
}

export function paperCommand(): Command {
  return withModelOptions(new Command('paper'))
    .description("the paper's experiments on one model, from the data given: mean-ablation (§3), TextSpan with pool baselines (§4), Waterbirds and property retrieval (§5), segmentation against attention baselines and joint maps (§6); resumable; writes a report with the paper's numbers beside")
    .requiredOption('-o, --out <dir>', 'report folder (its work/ subfolder keeps stores, texts and step results for reuse)')
    .option('--imagenet <dir>', 'ImageNet validation images in class folders (class names, or the 1000 WordNet ids)')
    .option('--waterbirds <dir>', 'the Waterbirds folder (metadata.csv with img_filename, y, split, place; the test split is used)')
    .option('--imagenet-seg <file>', "ImageNet-segmentation's gtsegs_ijcv.mat")
    .option('--images <dir>', 'pictures for the joint figure (e.g. a cat and a dog)')
    .option('--limit <n>', 'at most n images of each dataset, evenly spaced (a quicker, smaller run)')
    .option('--draws <n>', 'draws of each random TextSpan baseline', '3')
    .option('--seed <n>', 'seed of the random baselines and random heads', '0')
    .option('--batch-size <n>', 'images per forward pass', '16')
    .option('--classes <file>', 'ImageNet class names, one a line in class-index order (default: bundled)')
    .option('--templates <file>', 'zero-shot prompt templates with {} (default: the bundled 80 OpenAI templates)')
    .option('--no-stand-ins', 'toy-world models: skip the sections whose data is not given instead of generating toy-world stand-ins')
    .option('--plan-only', 'print the plan with its estimates and exit')
    .action(async (o: PaperFlags) => {
      const model = await modelFromFlags(o);
      const pp = await planPaper(model, {
        out: o.out,
        data: { imagenet: o.imagenet, waterbirds: o.waterbirds, imagenetSeg: o.imagenetSeg, images: o.images },
        limit: parseIntFlag(o.limit, 'limit'),
        draws: parseIntFlag(o.draws, 'draws')!,
        seed: parseIntFlag(o.seed, 'seed', 0)!,
        batchSize: parseIntFlag(o.batchSize, 'batch-size')!,
        classes: o.classes,
        templates: o.templates,
        standIns: o.standIns,
        loadModel: (spec) => modelFromFlags({ ...o, model: spec }),
      });
      try {
        const write = (s: string) => process.stderr.write(s);
        printPlan(pp.plan.status(), write);
        for (const s of pp.context.skipped) write(`skipped: ${SECTIONS[s.section]}: ${s.reason}\n`);
        if (o.planOnly) return;
        const progress = planProgress();
        let r;
        try {
          r = await runPaper(pp, model, (e) => progress.on(e));
        } finally {
          progress.stop();
        }
        const ran = r.timings.filter((t) => !t.cached).length;
        process.stdout.write(`report: ${resolve(o.out, 'index.html')} (${r.report.files.length} files; ${ran} steps run, ${r.timings.length - ran} reused; ${r.seconds.toFixed(1)} s)\n`);
      } finally {
        await pp.close();
        await model.release();
      }
    });
}
