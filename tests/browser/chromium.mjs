// What the browser tests (link.mjs, tenant-app.mjs) share: Chromium launched as this machine
// allows, what counts as a problem on a page, and failing with a message.

import { chromium } from 'playwright-core';
import fs from 'node:fs';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A failed expectation: reported as its message, without a stack. */
export class Failure extends Error {}

export function check(condition, message) {
  if (!condition) throw new Failure(message);
}

/** Debian's Chromium, or KONTOR_CHROMIUM; Playwright gives it a fresh profile folder. */
export function launch() {
  const executablePath = process.env.KONTOR_CHROMIUM || '/usr/bin/chromium';
  check(fs.existsSync(executablePath), `no browser at ${executablePath} (apt-get install -y chromium)`);
  return chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
}

/** Collects into `problems` the page's script errors, console errors and HTTP errors. */
export function watch(page, problems) {
  // Browsers ask every site for /favicon.ico; neither the hub nor the sandbox bank has one.
  const favicon = (url) => url?.endsWith('/favicon.ico');
  page.on('pageerror', (err) => problems.push(`page error on ${page.url()}: ${err.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !favicon(message.location().url)) {
      problems.push(`console error on ${page.url()}: ${message.text()} (${message.location().url})`);
    }
  });
  page.on('response', (response) => {
    if (response.status() >= 400 && !favicon(response.url())) {
      problems.push(`HTTP ${response.status()} for ${response.url()}`);
    }
  });
}
