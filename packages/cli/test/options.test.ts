/**
 * Every command's options are its own: commander hands an option the root program also defines
 * (`--timeout`) to the root, wherever it is written, so a command option of the same name
 * would never be set (`pbs verify --timeout` once silently kept its 120 s).
 */
import type { Command } from 'commander';
import { createProgram } from '../src/program';

function commands(c: Command): Command[] {
  return [c, ...c.commands.flatMap((x) => commands(x))];
}

test('no command defines an option the root program (or a parent command) already has', () => {
  const program = createProgram({
    io: { out: () => undefined, err: () => undefined },
    interrupted: new Promise<void>(() => undefined),
    nodePath: process.execPath,
    tty: false,
    env: {},
    signal: () => undefined,
  });
  const clashes: string[] = [];
  const walk = (c: Command, inherited: ReadonlySet<string>, path: string): void => {
    const own = c.options.map((o) => o.long).filter((l): l is string => l !== undefined);
    for (const l of own) if (inherited.has(l)) clashes.push(`${path} ${l}`);
    const next = new Set([...inherited, ...own]);
    for (const sub of c.commands) walk(sub, next, `${path} ${sub.name()}`.trim());
  };
  walk(program, new Set(), '');
  expect(commands(program).length).toBeGreaterThan(20); // the whole tree was walked
  expect(clashes).toEqual([]);
});
