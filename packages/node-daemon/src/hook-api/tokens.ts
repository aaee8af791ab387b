/**
 * Per-domain secrets for the hook API. Each domain's token lives in a file (placed in the
 * guest too); the daemon keeps only SHA-256 digests and compares them in constant time,
 * always against every domain, so timing tells nothing about which domain almost matched.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';

export const MIN_TOKEN_LENGTH = 16;
export const MAX_TOKEN_LENGTH = 4096;

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export interface TokenSource {
  readonly domain: string;
  readonly file: string;
}

export class DomainTokens {
  private digests = new Map<string, Buffer>();

  /** Reads every token file; returns the problems (nothing is replaced when there are any). */
  load(sources: readonly TokenSource[]): string[] {
    const problems: string[] = [];
    const next = new Map<string, Buffer>();
    for (const s of sources) {
      let text: string;
      try {
        text = fs.readFileSync(s.file, 'utf8').trim();
      } catch (err) {
        problems.push(
          `domain ${s.domain}: token file ${s.file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        );
        continue;
      }
      if (text.length < MIN_TOKEN_LENGTH || text.length > MAX_TOKEN_LENGTH || /\s/.test(text)) {
        problems.push(
          `domain ${s.domain}: token in ${s.file} must be ${MIN_TOKEN_LENGTH}–${MAX_TOKEN_LENGTH} characters without white space`,
        );
        continue;
      }
      next.set(s.domain, digest(text));
    }
    const seen = new Map<string, string>();
    for (const [domain, d] of next) {
      const other = seen.get(d.toString('hex'));
      if (other) problems.push(`domains ${other} and ${domain} share a token; every domain needs its own`);
      seen.set(d.toString('hex'), domain);
    }
    if (problems.length === 0) this.digests = next;
    return problems;
  }

  /** The domain a presented token belongs to, or null. */
  domainOf(token: string): string | null {
    const d = digest(token);
    let found: string | null = null;
    for (const [domain, expected] of this.digests) {
      if (timingSafeEqual(d, expected)) found = domain;
    }
    return found;
  }

  get size(): number {
    return this.digests.size;
  }
}
