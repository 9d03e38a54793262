// cliplens command line: one file per command, loaded only when that command runs, so
// `cliplens --version` and `--help` start without ONNX Runtime, sharp or h5wasm. Errors are one
// line on stderr (CLIPLENS_DEBUG=1 adds the stack).

import { Command, CommanderError } from 'commander';
import { packageVersion } from '../assets.ts';

interface CommandEntry {
  name: string;
  summary: string;
  load: () => Promise<Command>;
}

/** Every command with the one-line summary `cliplens --help` lists; its module is imported on use. */
export const COMMANDS: CommandEntry[] = [
  { name: 'encode', summary: 'image and/or text embeddings into a safetensors file', load: async () => (await import('./encode.ts')).encodeCommand() },
  { name: 'preprocess', summary: "decode, resize, crop and normalise images with the model's settings", load: async () => (await import('./preprocess.ts')).preprocessCommand() },
  { name: 'decompose', summary: 'per-layer, per-head (and per-token) direct contributions of images, or of a dataset into a store', load: async () => (await import('./decompose.ts')).decomposeCommand() },
  { name: 'store', summary: 'operate on decomposition stores: store merge joins the stores of decompose --shard runs', load: async () => (await import('./store.ts')).storeCommand() },
  { name: 'heatmap', summary: 'where in the image each text is read', load: async () => (await import('./heatmap.ts')).heatmapCommand() },
  { name: 'texts', summary: 'embed a text pool, or build a zero-shot classifier', load: async () => (await import('./texts.ts')).textsCommand() },
  { name: 'ablate', summary: 'zero-shot accuracy with MLPs, layers or heads mean-ablated', load: async () => (await import('./ablate.ts')).ablateCommand() },
  { name: 'textspan', summary: 'the texts that span each head (TextSpan), and the accuracy they keep', load: async () => (await import('./textspan.ts')).textspanCommand() },
  { name: 'debias', summary: 'remove a spurious cue by mean-ablating heads; per-group and worst-group accuracy', load: async () => (await import('./debias.ts')).debiasCommand() },
  { name: 'retrieve', summary: "nearest neighbours by chosen heads' terms vs the whole embedding", load: async () => (await import('./retrieve.ts')).retrieveCommand() },
  { name: 'segment', summary: 'zero-shot segmentation from the per-patch decomposition, with metrics', load: async () => (await import('./segment.ts')).segmentCommand() },
  { name: 'joint', summary: "a text's map restricted to each of its top heads", load: async () => (await import('./joint.ts')).jointCommand() },
  { name: 'neurons', summary: 'second-order effects of MLP neurons: effects, first PCs, text descriptions, ablation, segmentation, concepts', load: async () => (await import('./neurons.ts')).neuronsCommand() },
  { name: 'serve', summary: 'the explorer in the browser', load: async () => (await import('./serve.ts')).serveCommand() },
  { name: 'demo', summary: 'the main job on the embedded toy-world CLIP, offline; writes a report', load: async () => (await import('./demo.ts')).demoCommand() },
  { name: 'paper', summary: "the paper's experiments on one model from the data given (resumable), with its published numbers beside", load: async () => (await import('./paper.ts')).paperCommand() },
  { name: 'study', summary: 'end-to-end studies that write a report (study toyworld)', load: async () => (await import('./study.ts')).studyCommand() },
];

function root(): Command {
  return new Command('cliplens')
    .description("Explain a CLIP vision transformer's image representation: exact per-layer/head/patch decomposition, TextSpan, retrieval, segmentation")
    .version(packageVersion())
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
}

/** Commander errors throw (main maps them to exit code 2) in a command and every subcommand: addCommand does not pass exitOverride down. */
function throwing(c: Command): Command {
  c.exitOverride();
  c.commands.forEach(throwing);
  return c;
}

/** The program with every command loaded (documentation, completion, tests of the whole surface). */
export async function program(): Promise<Command> {
  const p = root();
  for (const c of COMMANDS) p.addCommand(throwing(await c.load()));
  return p;
}

/** The program for one invocation: only the command named in argv is imported. */
async function programFor(argv: string[]): Promise<Command> {
  const p = root();
  const name = argv[0] === 'help' ? argv[1] : argv[0];
  const entry = COMMANDS.find((c) => c.name === name);
  for (const c of COMMANDS) {
    if (c === entry) p.addCommand(throwing(await c.load()));
    else p.command(c.name).description(c.summary);
  }
  return p;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await (await programFor(argv)).parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    const err = e as Error;
    const msg = (err.message || String(e)).split('\n')[0];
    process.stderr.write(`cliplens: error: ${msg}\n`);
    if (process.env.CLIPLENS_DEBUG) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}
