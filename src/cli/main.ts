// cliplens command line: one file per command, errors as one line on stderr.

import { Command, CommanderError } from 'commander';
import { decomposeCommand } from './decompose.ts';
import { encodeCommand } from './encode.ts';
import { heatmapCommand } from './heatmap.ts';
import { preprocessCommand } from './preprocess.ts';
import { textsCommand } from './texts.ts';
import { ablateCommand } from './ablate.ts';
import { debiasCommand } from './debias.ts';
import { jointCommand } from './joint.ts';
import { retrieveCommand } from './retrieve.ts';
import { segmentCommand } from './segment.ts';
import { serveCommand } from './serve.ts';
import { textspanCommand } from './textspan.ts';
import { demoCommand } from './demo.ts';
import { studyCommand } from './study.ts';

export function program(): Command {
  const p = new Command('cliplens')
    .description("Explain a CLIP vision transformer's image representation: exact per-layer/head/patch decomposition, TextSpan, retrieval, segmentation")
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const c of [encodeCommand(), preprocessCommand(), decomposeCommand(), heatmapCommand(), textsCommand(), ablateCommand(), textspanCommand(), debiasCommand(), retrieveCommand(), segmentCommand(), jointCommand(), serveCommand(), demoCommand(), studyCommand()]) p.addCommand(c.exitOverride());
  return p;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv, { from: 'user' });
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

