/**
 * Headless Chromium for browser tests: Debian's `chromium` package (installed by
 * scripts/setup.sh) driven by playwright-core, which brings no browser of its own.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM_PATH = process.env.KILN_CHROMIUM ?? '/usr/bin/chromium';

/** Whether the browser is installed (tests skip with this reason when it is not). */
export function browserMissing(): string | false {
  return existsSync(CHROMIUM_PATH) ? false : `${CHROMIUM_PATH} is missing: run scripts/setup.sh (apt-get install chromium)`;
}

/**
 * Launches headless Chromium. Root has no user namespace sandbox for Chromium here, hence
 * --no-sandbox (the pages are the test's own, served from loopback).
 */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
}

/**
 * Where a test saves what a person would look at (screenshots): $KILN_TEST_ARTIFACTS, or
 * test-artifacts/ at the repository's root (ignored by git). Made on first use.
 */
export function artifactPath(name: string): string {
  const dir = process.env.KILN_TEST_ARTIFACTS ?? new URL('../../../test-artifacts/', import.meta.url).pathname;
  mkdirSync(dir, { recursive: true });
  return `${dir.replace(/\/$/, '')}/${name}`;
}
