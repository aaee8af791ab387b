/** Validation helpers shared by every configuration loader (daemon, filter, PBS site). */
import * as path from 'node:path';
import { ROLES } from './peer-auth';
import type { ClientBinding } from './peer-auth';

/** A parsed YAML/JSON mapping. */
export type ConfigObject = Record<string, unknown>;
type Obj = ConfigObject;

/**
 * Collects every problem of a configuration document (with the path of the bad field)
 * instead of stopping at the first; unknown keys are problems too.
 */
export class ConfigChecker {
  readonly problems: string[] = [];

  fail(at: string, msg: string): void {
    this.problems.push(`${at || '(top level)'}: ${msg}`);
  }

  object(v: unknown, at: string, allowed: readonly string[]): Obj | null {
    if (v === undefined || v === null) return null;
    if (typeof v !== 'object' || Array.isArray(v)) {
      this.fail(at, `must be a mapping, got ${Array.isArray(v) ? 'a list' : typeof v}`);
      return null;
    }
    for (const k of Object.keys(v)) {
      if (!allowed.includes(k)) {
        // Odd keys are quoted so the problem line stays unambiguous ("path: message").
        const key = /^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k);
        this.fail(at ? `${at}.${key}` : key, `unknown key (allowed: ${allowed.join(', ')})`);
      }
    }
    return v as Obj;
  }

  string(
    o: Obj | null,
    key: string,
    at: string,
    opts: { pattern?: RegExp; patternText?: string } = {},
  ): string | undefined {
    const v = o?.[key];
    if (v === undefined || v === null) return undefined;
    const p = at ? `${at}.${key}` : key;
    if (typeof v !== 'string' || v.length === 0) {
      this.fail(p, 'must be a non-empty string');
      return undefined;
    }
    if (opts.pattern && !opts.pattern.test(v)) {
      this.fail(p, `"${v}" is not ${opts.patternText ?? `matching ${String(opts.pattern)}`}`);
      return undefined;
    }
    return v;
  }

  /**
   * A file or directory path: a non-empty string without control characters (a newline, tab or
   * NUL in a path is a YAML mistake, and would garble the log lines and unit files that name it).
   */
  path(o: Obj | null, key: string, at: string): string | undefined {
    const v = this.string(o, key, at);
    if (v === undefined) return undefined;
    if (/[\x00-\x1f\x7f]/.test(v)) {
      this.fail(
        at ? `${at}.${key}` : key,
        `${JSON.stringify(v)} contains a control character (newline, tab, NUL…): not a usable path`,
      );
      return undefined;
    }
    return v;
  }

  int(o: Obj | null, key: string, at: string, min: number, max: number): number | undefined {
    const v = o?.[key];
    if (v === undefined || v === null) return undefined;
    const p = at ? `${at}.${key}` : key;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.fail(
        p,
        `must be an integer from ${min} to ${max}, got ${typeof v === 'number' ? String(v) : JSON.stringify(v)}`,
      );
      return undefined;
    }
    return v;
  }

  /**
   * A back-off mapping `{ initialMs, maxMs }` at `at` (each within its bounds, defaults when
   * absent); an initialMs above maxMs is a mistake (the first wait would be the longest).
   */
  backoff(
    v: unknown,
    at: string,
    defaults: { readonly initialMs: number; readonly maxMs: number },
  ): { readonly initialMs: number; readonly maxMs: number } {
    const o = this.object(v, at, ['initialMs', 'maxMs']);
    const initialMs = this.int(o, 'initialMs', at, 10, 600_000) ?? defaults.initialMs;
    const maxMs = this.int(o, 'maxMs', at, 10, 3_600_000) ?? defaults.maxMs;
    if (initialMs > maxMs) this.fail(at, `initialMs (${initialMs}) must not be above maxMs (${maxMs})`);
    return { initialMs, maxMs };
  }

  bool(o: Obj | null, key: string, at: string): boolean | undefined {
    const v = o?.[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') {
      this.fail(at ? `${at}.${key}` : key, `must be true or false, got ${JSON.stringify(v)}`);
      return undefined;
    }
    return v;
  }

  oneOf<T extends string>(o: Obj | null, key: string, at: string, values: readonly T[]): T | undefined {
    const v = this.string(o, key, at);
    if (v === undefined) return undefined;
    if (!(values as readonly string[]).includes(v)) {
      this.fail(at ? `${at}.${key}` : key, `"${v}" is not one of ${values.join(', ')}`);
      return undefined;
    }
    return v as T;
  }

  /**
   * A TLS section at `at`: the mapping (with its `extra` keys allowed) and its `ca`, `cert` and
   * `key` PEM files resolved against `baseDir` (files null when one is missing or bad: the problem
   * is recorded). Absent: null. Present but empty (`tls:` with nothing under it, often children
   * commented out) is a problem, not plaintext: a section that reads as "TLS on" must not serve
   * without it.
   */
  pemFiles(
    v: unknown,
    at: string,
    baseDir: string,
    extra: readonly string[],
  ): { files: { ca: string; cert: string; key: string } | null; o: Obj } | null {
    if (v === null) {
      this.fail(at, 'is empty: give ca, cert and key, or leave the key out for plaintext');
      return null;
    }
    const o = this.object(v, at, ['ca', 'cert', 'key', ...extra]);
    if (!o) return null;
    const file = (k: string): string | undefined => {
      if (o[k] === undefined) this.fail(`${at}.${k}`, 'is required (a PEM file)');
      const f = this.path(o, k, at);
      return f ? path.resolve(baseDir, f) : undefined;
    };
    const ca = file('ca');
    const cert = file('cert');
    const key = file('key');
    return { files: ca && cert && key ? { ca, cert, key } : null, o };
  }

  /**
   * A list of `{ identity, role }` (certificate CN → role) at `at`; `what` says who they are in
   * the problem when the list is missing or empty.
   */
  clientBindings(v: unknown, at: string, what: string): ClientBinding[] {
    const clients: ClientBinding[] = [];
    if (!Array.isArray(v) || v.length === 0) {
      this.fail(at, `must list ${what}`);
      return clients;
    }
    v.forEach((x, i) => {
      const p = `${at}.${i}`;
      const co = this.object(x, p, ['identity', 'role']);
      const identity = this.string(co, 'identity', p);
      if (co && co.identity === undefined) this.fail(`${p}.identity`, 'is required (the certificate CN)');
      const role = this.oneOf(co, 'role', p, ROLES);
      if (co && co.role === undefined) this.fail(`${p}.role`, `is required (${ROLES.join(', ')})`);
      if (identity && clients.some((y) => y.identity === identity))
        this.fail(`${p}.identity`, `duplicate identity "${identity}"`);
      else if (identity && role) clients.push({ identity, role });
    });
    return clients;
  }
}
