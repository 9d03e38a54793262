// Headless Chromium for the explorer's browser tests: Debian's /usr/bin/chromium (.ci/run installs
// it; CLIPLENS_TEST_CHROMIUM overrides the path); CLIPLENS_TEST_SKIP_BROWSER=1 skips those tests.

import { existsSync } from 'node:fs';
import type { BrowserContext } from 'playwright-core';

export const CHROMIUM = process.env.CLIPLENS_TEST_CHROMIUM ?? '/usr/bin/chromium';
export const SKIP_BROWSER = process.env.CLIPLENS_TEST_SKIP_BROWSER === '1';

export async function launchBrowser(profileDir: string): Promise<BrowserContext> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: the browser test needs Debian's chromium (.ci/run installs it: apt-get install -y chromium); set CLIPLENS_TEST_SKIP_BROWSER=1 to skip it`);
  }
  const { chromium } = await import('playwright-core');
  return chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1360, height: 900 },
    timeout: 60_000,
  });
}
