#!/usr/bin/env node
// Before `npm test`: the browser tests drive Debian's Chromium. Install it when it is missing and
// we can (root with apt-get); otherwise say exactly what is needed. CLIPLENS_TEST_SKIP_BROWSER=1 skips.
import { existsSync } from 'node:fs';
import { execSync } from 'node:child_process';

const BROWSER = '/usr/bin/chromium';
if (process.env.CLIPLENS_TEST_SKIP_BROWSER === '1' || existsSync(BROWSER)) process.exit(0);
const root = typeof process.getuid === 'function' && process.getuid() === 0;
const apt = existsSync('/usr/bin/apt-get');
if (!root || !apt) {
  console.error(`${BROWSER} is missing: install Debian's chromium package (apt-get install -y chromium), or set CLIPLENS_TEST_SKIP_BROWSER=1 to skip the browser tests`);
  process.exit(0);
}
console.error(`${BROWSER} is missing: installing Debian's chromium for the browser tests…`);
execSync('apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null', { stdio: 'inherit', shell: '/bin/bash' });
