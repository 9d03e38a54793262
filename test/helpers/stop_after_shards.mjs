// Preloaded with `node --import` into a CLI run by the kill -9 test: right after the store's
// manifest (written atomically by rename) records STOP_AFTER_SHARDS shards, the process stops
// itself with SIGSTOP. The test then kills it at exactly that point, every time.

import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

const stopAfter = Number(process.env.STOP_AFTER_SHARDS);
const rename = fs.renameSync;
fs.renameSync = function renameThenMaybeStop(from, to) {
  rename(from, to);
  if (String(to).endsWith('manifest.json') && JSON.parse(fs.readFileSync(to, 'utf8')).shards.length >= stopAfter) process.kill(process.pid, 'SIGSTOP');
};
syncBuiltinESMExports(); // `import { renameSync } from 'node:fs'` sees the wrapper too
