// Imported first by every test file: the suite runs with none of the user's CLIPLENS_* / HF_*
// settings (offline mode, cache directory, hub endpoint, threads, execution provider), so it
// behaves the same on every machine. Spawned CLIs inherit this cleaned environment. The test
// harness's own switches (CLIPLENS_TEST_CHROMIUM, CLIPLENS_TEST_SKIP_BROWSER, …) are kept.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

for (const key of Object.keys(process.env)) if (/^(CLIPLENS_|HF_)/.test(key) && !key.startsWith('CLIPLENS_TEST_')) delete process.env[key];

// Every temporary file of this test file — its own, the library's (TMPDIR-based) and its child
// processes' — goes into one directory removed when the file's process exits, so the suite leaves
// nothing behind in the system's temporary directory.
const suiteTmp = mkdtempSync(join(tmpdir(), 'cliplens-test-'));
process.env.TMPDIR = suiteTmp;
process.on('exit', () => rmSync(suiteTmp, { recursive: true, force: true }));
