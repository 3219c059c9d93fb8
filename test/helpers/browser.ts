import fs from 'node:fs';
import puppeteer, { type Browser } from 'puppeteer-core';

/** Debian's chromium (scripts/setup installs it). */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Headless chromium inside a network namespace, driven by puppeteer-core over a pipe (fds 3
 * and 4, which nsenter passes on): the page reaches addresses only that namespace can, such as
 * a lab machine's. Throws when chromium is missing: the browser test must not pass without it.
 */
export async function launchInNetns(netnsPath: string, opts: { protocolTimeoutMs?: number } = {}): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/setup (Debian package chromium)`);
  return puppeteer.launch({
    executablePath: '/usr/bin/nsenter',
    ignoreDefaultArgs: true,
    pipe: true,
    args: [
      `--net=${netnsPath}`,
      '--',
      CHROMIUM,
      '--headless=new',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--no-first-run',
      '--no-default-browser-check',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--metrics-recording-only',
      '--mute-audio',
      '--disable-background-timer-throttling',
      '--disable-renderer-backgrounding',
      '--disable-backgrounding-occluded-windows',
      'about:blank',
    ],
    defaultViewport: { width: 1400, height: 1000 },
    // Lab daemons' certificates come from the lab's own CA, unknown to this browser profile.
    acceptInsecureCerts: true,
    ...(opts.protocolTimeoutMs ? { protocolTimeout: opts.protocolTimeoutMs } : {}),
  });
}
