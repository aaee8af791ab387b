/** The `magrathea` command tree (commander 14). `main.ts` runs it; everything here gets its I/O injected. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import type { TlsFiles } from '@magrathea/common';
import { packageVersion } from '@magrathea/common';
import type { Component, Endpoint } from './client';
import { CliError, EXIT, EXIT_KIND } from './client';
import type { Io } from './output';
import { addBoxCommand } from './commands/box';
import { addClusterCommands } from './commands/cluster';
import { addNodeCommands } from './commands/node';
import { addImageCommands } from './commands/image';
import { addPbsCommands } from './commands/pbs';
import { addPkiCommands } from './commands/pki';

export const VERSION = packageVersion(__dirname);

/** Where a node command looks for magrathead without --node or MAGRATHEA_NODE, in order. */
export const LOCAL_SOCKETS = ['/var/lib/magrathea/magrathead.sock', '.magrathea/magrathead.sock'] as const;

/** Default of `--timeout`, seconds. */
export const DEFAULT_TIMEOUT_S = 10;

export interface ProgramDeps {
  readonly io: Io;
  /** Resolves when the user interrupts (Ctrl-C), the terminal closes, or the parent goes away. */
  readonly interrupted: Promise<void>;
  /** The node binary (to start daemons for `box`). */
  readonly nodePath: string;
  /** True when stdout is a terminal. */
  readonly tty: boolean;
  /** The environment (MAGRATHEA_NODE, MAGRATHEA_TLS_CA/CERT/KEY). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The working directory (relative local sockets resolve against it). */
  readonly cwd?: string;
  /** mTLS files; default: from MAGRATHEA_TLS_CA/CERT/KEY in `env`. */
  readonly tls?: TlsFiles | null;
  /** Sends a signal to a process (`pbs install` tells pbs_sched to re-read sched_config). */
  readonly signal: (pid: number, signal: 'SIGHUP') => void;
  /** How a user runs this CLI here (`magrathea`, or `node …/main.js` in a checkout), for hints. */
  readonly self?: string;
}

/** What every command shares once the global options are parsed. */
export interface CliContext {
  /** `--timeout`, ms: the deadline of each call to magrathead or magrathea-filter. */
  timeoutMs: number;
  /** The endpoint of a server for an address (`component` decides which flag a bad address blames). */
  endpoint(addr: string, component: Component): Endpoint;
  /** magrathead's address: `--node`, else MAGRATHEA_NODE, else the local socket. */
  nodeAddress(flag: string | undefined): string;
}

/** MAGRATHEA_TLS_CA, _CERT and _KEY: all three, or none (plaintext). */
export function tlsFromEnv(env: Readonly<Record<string, string | undefined>>): TlsFiles | null {
  const { MAGRATHEA_TLS_CA: ca, MAGRATHEA_TLS_CERT: cert, MAGRATHEA_TLS_KEY: key } = env;
  if (!ca && !cert && !key) return null;
  if (!ca || !cert || !key)
    throw new CliError('set all of MAGRATHEA_TLS_CA, MAGRATHEA_TLS_CERT and MAGRATHEA_TLS_KEY, or none', EXIT.usage);
  return { ca, cert, key };
}

function createContext(deps: ProgramDeps): CliContext {
  const env = deps.env ?? {};
  let tls: TlsFiles | null | undefined = deps.tls;
  const ctx: CliContext = {
    timeoutMs: DEFAULT_TIMEOUT_S * 1000,
    endpoint(addr, component) {
      if (component === 'magrathead') tls ??= tlsFromEnv(env);
      return { addr, component, tls: component === 'magrathead' ? (tls ?? null) : null, timeoutMs: ctx.timeoutMs };
    },
    nodeAddress(flag) {
      if (flag !== undefined) return flag;
      if (env.MAGRATHEA_NODE) return env.MAGRATHEA_NODE;
      const cwd = deps.cwd ?? '/';
      const sockets = LOCAL_SOCKETS.map((s) => path.resolve(cwd, s));
      const found = sockets.find((s) => {
        try {
          return fs.statSync(s).isSocket();
        } catch {
          return false;
        }
      });
      if (found) return `unix:${found}`;
      throw new CliError(
        `no magrathead to talk to: give --node HOST:PORT or unix:PATH, or set MAGRATHEA_NODE (no local socket at ${sockets.join(' or ')})`,
        EXIT.usage,
      );
    },
  };
  return ctx;
}

export function createProgram(deps: ProgramDeps): Command {
  const { io } = deps;
  const ctx = createContext(deps);
  const program = new Command('magrathea')
    .description('Administer Magrathea: node daemons (magrathead), the cluster view (magrathea-filter), PBS.')
    .version(VERSION, '-V, --version', 'print the version and exit')
    .option(
      '--timeout <seconds>',
      `how long each call to magrathead or magrathea-filter may take (default ${DEFAULT_TIMEOUT_S})`,
    )
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .exitOverride()
    .showHelpAfterError()
    .hook('preAction', () => {
      const t = program.opts<{ timeout?: string }>().timeout;
      if (t === undefined) return;
      const s = Number(t);
      if (!Number.isFinite(s) || s <= 0 || s > 3600)
        throw new CliError(`--timeout: "${t}" is not a number of seconds (more than 0, at most 3600)`, EXIT.usage);
      ctx.timeoutMs = s * 1000;
    });

  addNodeCommands(program, { io, interrupted: deps.interrupted, ctx });
  addImageCommands(program, { io, ctx });
  addPbsCommands(program, deps);
  addClusterCommands(program, io, deps.interrupted, ctx);
  addBoxCommand(program, {
    io,
    interrupted: deps.interrupted,
    nodePath: deps.nodePath,
    tty: deps.tty,
    self: deps.self ?? 'magrathea',
    env: deps.env ?? {},
  });
  addPkiCommands(program, io);
  checkRequiredAfterUnknown(program);
  return program;
}

/**
 * Commander checks required options before unknown ones, so a misspelled required option
 * (`job start --domian meta`) was reported as `--domain` missing. Required options are checked
 * in a preAction hook instead, after the unknown-option check (which suggests the right name).
 */
function checkRequiredAfterUnknown(cmd: Command): void {
  for (const sub of cmd.commands) checkRequiredAfterUnknown(sub);
  const required = cmd.options.filter((o) => o.mandatory);
  if (required.length === 0) return;
  for (const o of required) o.mandatory = false;
  cmd.hook('preAction', (c) => {
    const missing = required.find((o) => c.getOptionValue(o.attributeName()) === undefined);
    if (missing)
      c.error(`error: required option '${missing.flags}' not specified`, {
        code: 'commander.missingMandatoryOptionValue',
      });
  });
}

/** True when the command line asks for JSON (`--json` before any `--`). */
function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}

/**
 * Runs the program; returns the exit code (never throws). An error is one line on stderr
 * (`magrathea: …`, then `hint: …`); with `--json` it is also a JSON object on stdout
 * (`{"error": {"kind", "exit_code", "message", "reason"?, "hint"?}}`) unless the command already
 * printed its JSON result there (e.g. a `pbs install` report with `"ok": false`).
 */
export async function run(argv: readonly string[], deps: ProgramDeps): Promise<number> {
  let printed = false;
  const io: Io = {
    out: (t) => {
      printed = true;
      deps.io.out(t);
    },
    err: (t) => deps.io.err(t),
  };
  const json = wantsJson(argv);
  const report = (message: string, exitCode: number, reason = '', hint = ''): number => {
    io.err(`magrathea: ${message}`);
    if (hint) io.err(`hint: ${hint}`);
    if (json && !printed)
      io.out(
        JSON.stringify({
          error: {
            kind: EXIT_KIND[exitCode] ?? 'error',
            exit_code: exitCode,
            message,
            ...(reason ? { reason } : {}),
            ...(hint ? { hint } : {}),
          },
        }),
      );
    return exitCode;
  };
  let usage = '';
  const program = createProgram({
    ...deps,
    io: {
      out: (t) => io.out(t),
      err: (t) => {
        // commander's own messages ("error: unknown option …"): kept for the JSON error
        if (t.startsWith('error:')) usage = t.replace(/^error:\s*/, '');
        io.err(t);
      },
    },
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CliError) return report(err.message, err.exitCode, err.reason, err.hint);
    const ce = err as { code?: string; exitCode?: number };
    if (typeof ce.code === 'string' && ce.code.startsWith('commander.')) {
      if (ce.code === 'commander.helpDisplayed' || ce.code === 'commander.version' || ce.code === 'commander.help')
        return EXIT.ok;
      if (json && !printed)
        io.out(JSON.stringify({ error: { kind: 'usage', exit_code: EXIT.usage, message: usage || 'bad usage' } }));
      return EXIT.usage;
    }
    return report(`internal error: ${(err as Error).message}`, EXIT.error);
  }
}
