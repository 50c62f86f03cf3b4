import { existsSync } from 'node:fs';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

/**
 * Headless Chromium for the browser suite: Debian's `chromium` package (`.ci/run` installs it when it is
 * missing), driven by puppeteer-core, which never downloads a browser. `STS_TEST_CHROMIUM` points elsewhere.
 * A missing browser fails the suite: it is never skipped.
 */
export const CHROMIUM_PATH = process.env.STS_TEST_CHROMIUM ?? '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `No Chromium at ${CHROMIUM_PATH}: install Debian's package (apt-get install -y chromium, as .ci/run does) or set STS_TEST_CHROMIUM`,
    );
  }
  // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
  return puppeteer.launch({ executablePath: CHROMIUM_PATH, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
}

/** What the browser itself reported while a page ran: console messages, its own CORS errors among them. */
export function browserMessages(page: Page): string[] {
  const messages: string[] = [];
  page.on('console', (message) => messages.push(message.text()));
  return messages;
}
