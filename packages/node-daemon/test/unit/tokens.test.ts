import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DomainTokens } from '../../src/hook-api/tokens';

describe('DomainTokens', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mg-tokens-'));
  const file = (name: string, text: string) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text);
    return f;
  };
  afterAll(() => fs.rmSync(dir, { recursive: true }));

  test('maps a token to its domain; unknown tokens map to nothing', () => {
    const t = new DomainTokens();
    expect(
      t.load([
        { domain: 'a', file: file('a', 'aaaaaaaaaaaaaaaa-1\n') },
        { domain: 'b', file: file('b', 'bbbbbbbbbbbbbbbb-2') },
      ]),
    ).toEqual([]);
    expect(t.domainOf('aaaaaaaaaaaaaaaa-1')).toBe('a');
    expect(t.domainOf('bbbbbbbbbbbbbbbb-2')).toBe('b');
    expect(t.domainOf('bbbbbbbbbbbbbbbb-3')).toBeNull();
    expect(t.domainOf('')).toBeNull();
  });

  test('bad token files are reported and the previous tokens stay in force (rotation is all or nothing)', () => {
    const t = new DomainTokens();
    t.load([{ domain: 'a', file: file('a1', 'aaaaaaaaaaaaaaaa-1') }]);
    const problems = t.load([
      { domain: 'a', file: file('a2', 'short') },
      { domain: 'b', file: path.join(dir, 'missing') },
      { domain: 'c', file: file('c', 'cccccccccccccccc-same') },
      { domain: 'd', file: file('d', 'cccccccccccccccc-same') },
    ]);
    expect(problems).toEqual([
      expect.stringMatching(/^domain a: token in .* must be 16/),
      expect.stringMatching(/^domain b: token file .* cannot be read \(ENOENT\)/),
      expect.stringMatching(/^domains c and d share a token/),
    ]);
    expect(t.domainOf('aaaaaaaaaaaaaaaa-1')).toBe('a');
  });
});
