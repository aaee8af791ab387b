/** The `magrathea` command tree (commander 14). `main.ts` runs it; everything here gets its I/O injected. */
import { Command } from 'commander';
import type { TlsFiles } from '@magrathea/common';
import { CliError, EXIT } from './client';
import type { Io } from './output';
import { addBoxCommand } from './commands/box';
import { addClusterCommands } from './commands/cluster';
import { addNodeCommands } from './commands/node';
import { addPbsCommands } from './commands/pbs';
import { addPkiCommands } from './commands/pki';

export interface ProgramDeps {
  readonly io: Io;
  /** Resolves when the user interrupts (Ctrl-C); used by `watch`. */
  readonly interrupted: Promise<void>;
  /** The node binary (to start daemons for `box`). */
  readonly nodePath: string;
  /** True when stdout is a terminal. */
  readonly tty: boolean;
  /** mTLS files for daemons that serve TLS (from MAGRATHEA_TLS_CA/CERT/KEY), or null. */
  readonly tls?: TlsFiles | null;
  /** Sends a signal to a process (`pbs install` tells pbs_sched to re-read sched_config). */
  readonly signal: (pid: number, signal: 'SIGHUP') => void;
}

export function createProgram(deps: ProgramDeps): Command {
  const { io } = deps;
  const program = new Command('magrathea')
    .description('Administer Magrathea node daemons (magrathead).')
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .exitOverride()
    .showHelpAfterError();

  addNodeCommands(program, { io, interrupted: deps.interrupted, tls: deps.tls ?? null });
  addPbsCommands(program, deps);
  addClusterCommands(program, io, deps.interrupted);
  addBoxCommand(program, { io, interrupted: deps.interrupted, nodePath: deps.nodePath, tty: deps.tty });
  addPkiCommands(program, io);
  return program;
}

/** Runs the program; returns the exit code (never throws). */
export async function run(argv: readonly string[], deps: ProgramDeps): Promise<number> {
  const program = createProgram(deps);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CliError) {
      deps.io.err(`magrathea: ${err.message}`);
      return err.exitCode;
    }
    const ce = err as { code?: string; exitCode?: number };
    if (typeof ce.code === 'string' && ce.code.startsWith('commander.')) {
      return ce.code === 'commander.helpDisplayed' || ce.code === 'commander.version' || ce.code === 'commander.help'
        ? EXIT.ok
        : EXIT.usage;
    }
    deps.io.err(`magrathea: ${(err as Error).message}`);
    return EXIT.error;
  }
}
