/**
 * Headless Chromium for the browser tests: Debian's `chromium` driven by playwright-core (never a
 * browser download), a fresh profile directory per launch, removed on close.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.MAGRATHEA_CHROMIUM ?? '/usr/bin/chromium';

/** Why the browser tests cannot run here ('' when they can); with MAGRATHEA_REQUIRE_CHROMIUM=1 a skip is a failure. */
export function browserMissing(): string {
  if (fs.existsSync(CHROMIUM)) return '';
  const why = `${CHROMIUM} is missing (apt-get install chromium; test/setup.sh does it as root)`;
  if (process.env.MAGRATHEA_REQUIRE_CHROMIUM === '1') throw new Error(`browser tests required: ${why}`);
  return why;
}

export interface Browser {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

/** Starts Chromium headless with the flags of a quiet, reproducible test browser. */
export async function launchBrowser(viewport = { width: 1500, height: 900 }): Promise<Browser> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'mg-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-quic',
        '--no-first-run',
      ],
    });
    return {
      context,
      close: async () => {
        try {
          await context.close();
        } finally {
          fs.rmSync(profile, { recursive: true, force: true });
        }
      },
    };
  } catch (err) {
    fs.rmSync(profile, { recursive: true, force: true });
    throw err;
  }
}

/** The WCAG 2 contrast ratio of two CSS colours given as `rgb(r, g, b)` / `rgba(r, g, b, a)` (opaque). */
export function contrastRatio(fg: string, bg: string): number {
  const lum = (css: string): number => {
    const m = /rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)/.exec(css);
    if (!m) throw new Error(`not an rgb() colour: ${css}`);
    const [r, g, b] = [m[1], m[2], m[3]].map((x) => {
      const c = Number(x) / 255;
      return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    }) as [number, number, number];
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x) as [number, number];
  return (a + 0.05) / (b + 0.05);
}
