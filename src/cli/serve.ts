// `cliplens serve`: the local web explorer (src/server, src/web).

import { Command } from 'commander';
import { formatBytes, parseSize } from '../server/http_util.ts';
import { startServer } from '../server/server.ts';
import { modelFromFlags, parseIntFlag, withModelOptions, type ModelFlags } from './common.ts';
import { UsageError } from '../errors.ts';
import { collect } from './inputs.ts';
import { VERIFY_HELP } from './study_common.ts';

interface ServeFlags extends ModelFlags {
  store?: string;
  textspan?: string;
  classes?: string;
  neurons?: string;
  neuronDescriptions?: string;
  neuronStore?: string;
  port: string;
  host: string;
  maxUpload: string;
  cache: string;
  allowHost: string[];
  verify?: boolean;
}

export function serveCommand(): Command {
  return withModelOptions(new Command('serve'))
    .description('a local web page to look inside the model: per-layer/head decomposition and text heatmaps of your images, TextSpan head catalogue, retrieval by head, ablation playground')
    .option('--store <dir>', 'a store made by `cliplens decompose --dataset` (retrieval, ablation, head top images)')
    .option('--textspan <file>', 'TextSpan result JSON: { "heads": [{ "layer", "head", "texts": [...], "varianceExplained": [...] }] }')
    .option('--classes <file>', 'class names for zero-shot, one a line, in the order of the store labels (default: the labels)')
    .option('--neurons <file>', 'neuron view: PCs of one MLP block (cliplens neurons pca)')
    .option('--neuron-descriptions <file>', 'their text descriptions (cliplens neurons describe --out)')
    .option('--neuron-store <dir>', 'a neuron store whose images are shown as the neurons’ top images')
    .option('--port <n>', 'port; 0 = any free port', '8765')
    .option('--host <host>', 'address to bind; anything but loopback exposes the server to your network', '127.0.0.1')
    .option('--max-upload <size>', 'largest image upload', '20MB')
    .option('--cache <n>', 'uploaded images kept in memory', '64')
    .option('--allow-host <name>', 'also answer requests addressed to this host name or address (repeatable; the bound address and loopback names always are)', collect, [])
    .option('--verify', VERIFY_HELP)
    .action(async (o: ServeFlags) => {
      const port = parseIntFlag(o.port, 'port', 0, 65535)!;
      let maxUpload: number;
      try {
        maxUpload = parseSize(o.maxUpload);
      } catch (e) {
        throw new UsageError(`--max-upload: ${(e as Error).message}`);
      }
      const cacheSize = parseIntFlag(o.cache, 'cache')!;
      if (!o.neurons && (o.neuronDescriptions || o.neuronStore)) throw new UsageError('--neuron-descriptions and --neuron-store need --neurons PCS');
      const neurons = o.neurons ? { pcs: o.neurons, descriptions: o.neuronDescriptions, store: o.neuronStore } : undefined;
      const model = await modelFromFlags(o);
      const srv = await startServer({ model, store: o.store, textspan: o.textspan, classes: o.classes, neurons, port, host: o.host, maxUpload, cacheSize, allowHosts: o.allowHost, verifyStore: o.verify });
      process.stdout.write(`cliplens serve: model ${model.name}${o.store ? `, store ${o.store}` : ''}; uploads up to ${formatBytes(maxUpload)}\n`);
      process.stdout.write(`listening on ${srv.url}  (Ctrl-C to stop)\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          srv.close().then(() => model.release()).then(resolve, resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
