/**
 * Per-domain secrets for the hook API. Each domain's token lives in a file (placed in the
 * guest too); the daemon keeps only SHA-256 digests and compares them in constant time,
 * always against every domain, so timing tells nothing about which domain almost matched.
 * Token files are read off the event loop, only when they are regular files of a bounded size
 * (a FIFO or a device would hang the reload, a huge file exhaust memory).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readRegularFile } from '@magrathea/common';

export const MIN_TOKEN_LENGTH = 16;
export const MAX_TOKEN_LENGTH = 4096;
/** Largest token file read, bytes (the token plus white space around it). */
export const MAX_TOKEN_FILE_BYTES = 64 * 1024;

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export interface TokenSource {
  readonly domain: string;
  readonly file: string;
}

/** What a load found: problems (nothing was replaced) and warnings (the tokens were taken). */
export interface TokenLoad {
  readonly problems: readonly string[];
  readonly warnings: readonly string[];
}

export class DomainTokens {
  private digests = new Map<string, Buffer>();

  /** Reads every token file; with any problem nothing is replaced. */
  async load(sources: readonly TokenSource[]): Promise<TokenLoad> {
    const problems: string[] = [];
    const warnings: string[] = [];
    const next = new Map<string, Buffer>();
    const read = await Promise.allSettled(
      sources.map((s) => readRegularFile(s.file, { maxBytes: MAX_TOKEN_FILE_BYTES, what: 'token file' })),
    );
    sources.forEach((s, i) => {
      const r = read[i] as PromiseSettledResult<Awaited<ReturnType<typeof readRegularFile>>>;
      if (r.status === 'rejected') {
        problems.push(`domain ${s.domain}: ${(r.reason as Error).message}`);
        return;
      }
      const text = r.value.data.toString('utf8').trim();
      if (text.length < MIN_TOKEN_LENGTH || text.length > MAX_TOKEN_LENGTH || /\s/.test(text)) {
        problems.push(
          `domain ${s.domain}: token in ${s.file} must be ${MIN_TOKEN_LENGTH}–${MAX_TOKEN_LENGTH} characters without white space`,
        );
        return;
      }
      if ((r.value.mode & 0o004) !== 0)
        warnings.push(
          `domain ${s.domain}: token file ${s.file} is readable by every local user (mode ${r.value.mode.toString(8).padStart(4, '0')}); chmod 0600 it`,
        );
      next.set(s.domain, digest(text));
    });
    const seen = new Map<string, string>();
    for (const [domain, d] of next) {
      const other = seen.get(d.toString('hex'));
      if (other) problems.push(`domains ${other} and ${domain} share a token; every domain needs its own`);
      seen.set(d.toString('hex'), domain);
    }
    if (problems.length === 0) this.digests = next;
    return { problems, warnings };
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
