/** Fuzzing the config loader: any document gives a valid config or a ConfigError listing problems; nothing else. */
import fc from 'fast-check';
import { stringify } from 'yaml';
import { compileConfig, parseConfigText } from '../../src/config/load-config';
import { ConfigError } from '../../src/errors';

const KEYS = [
  'node',
  'stateDir',
  'listen',
  'hookApi',
  'driver',
  'domains',
  'reconcileCron',
  'metricsCron',
  'snapshotEvery',
  'eventBacklog',
  'shutdownGraceMs',
  'log',
  'name',
  'class',
  'tokenFile',
  'tcp',
  'unixSocket',
  'kind',
  'simulated',
  'latencyMs',
  'failures',
  'op',
  'level',
  'allowNonLoopback',
  'autostart',
];

/** Documents shaped like configs (known keys, wrong and right value types) plus arbitrary JSON. */
const docArb = fc.oneof(
  fc.anything({ maxDepth: 4 }),
  fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: 'small' },
      fc.string(),
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.array(tie('value'), { maxLength: 4 }),
      tie('obj'),
    ),
    obj: fc.dictionary(fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 8 })), tie('value'), { maxKeys: 6 }),
  })).obj,
);

function check(doc: unknown): void {
  try {
    const c = compileConfig(doc, '/etc/magrathea', {}, 'host');
    expect(c.domains.length).toBeGreaterThan(0);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems;
    expect(problems.length).toBeGreaterThan(0);
    // "path: message", where odd keys in the path are JSON-quoted.
    for (const p of problems) expect(p).toMatch(/^(?:[^:"]|"(?:[^"\\]|\\.)*")+: \S/);
  }
}

test('10,000 generated documents: a config or a ConfigError with located problems, never a crash', () => {
  fc.assert(fc.property(docArb, check), { numRuns: 10_000 });
});

test('YAML text round trip of generated documents, and raw garbage text', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        docArb.map((d) => {
          try {
            return stringify(d) ?? '';
          } catch {
            return '{';
          }
        }),
        fc.string({ maxLength: 200 }),
      ),
      (text) => {
        try {
          check(parseConfigText(text, 'fuzz.yaml'));
        } catch (err) {
          expect(err).toBeInstanceOf(ConfigError);
        }
      },
    ),
    { numRuns: 2_000 },
  );
});
