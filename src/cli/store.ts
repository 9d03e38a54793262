import { Command } from 'commander';
import { mergeStores } from '../io/store_merge.ts';

export function storeCommand(): Command {
  const store = new Command('store').description('operate on decomposition stores');
  store
    .command('merge')
    .description('join the stores of decompose --shard K/N runs into the store one run would have written')
    .argument('<stores...>', 'shard stores (any order)')
    .requiredOption('-o, --out <dir>', 'the merged store (a new directory)')
    .action((stores: string[], o: { out: string }) => {
      const r = mergeStores(stores, o.out);
      process.stderr.write(`merged ${r.stores} stores into ${r.out}: ${r.items} inputs in ${r.batches} batches, ${r.failed} unreadable; complete\n`);
    });
  return store;
}
