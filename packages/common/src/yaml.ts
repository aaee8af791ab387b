/** Strict YAML for every config file: syntax errors and warnings are problems with line and column; nothing is printed. */
import { parseDocument } from 'yaml';

/** Parses YAML text; returns the document or every problem as `source:line:col: message`. */
export function parseYamlStrict(
  text: string,
  source: string,
): { ok: true; value: unknown } | { ok: false; problems: string[] } {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true, logLevel: 'silent' });
  const problems = [...doc.errors, ...doc.warnings].map((e) => {
    const pos = e.linePos?.[0];
    return `${source}${pos ? `:${pos.line}:${pos.col}` : ''}: ${e.message.split('\n')[0] ?? 'YAML problem'}`;
  });
  if (problems.length > 0) return { ok: false, problems };
  try {
    return { ok: true, value: doc.toJS({ maxAliasCount: 100 }) as unknown };
  } catch (err) {
    // Unresolved aliases, alias bombs.
    return { ok: false, problems: [`${source}: ${(err as Error).message.split('\n')[0] ?? 'invalid YAML'}`] };
  }
}
