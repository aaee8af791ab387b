import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DomainTokens, MAX_TOKEN_FILE_BYTES } from '../../src/hook-api/tokens';

describe('DomainTokens', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mg-tokens-'));
  const file = (name: string, text: string, mode = 0o600) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text, { mode });
    fs.chmodSync(f, mode);
    return f;
  };
  afterAll(() => fs.rmSync(dir, { recursive: true }));

  test('maps a token to its domain; unknown tokens map to nothing', async () => {
    const t = new DomainTokens();
    expect(
      await t.load([
        { domain: 'a', file: file('a', 'aaaaaaaaaaaaaaaa-1\n') },
        { domain: 'b', file: file('b', 'bbbbbbbbbbbbbbbb-2') },
      ]),
    ).toEqual({ problems: [], warnings: [] });
    expect(t.domainOf('aaaaaaaaaaaaaaaa-1')).toBe('a');
    expect(t.domainOf('bbbbbbbbbbbbbbbb-2')).toBe('b');
    expect(t.domainOf('bbbbbbbbbbbbbbbb-3')).toBeNull();
    expect(t.domainOf('')).toBeNull();
  });

  test('bad token files are reported and the previous tokens stay in force (rotation is all or nothing)', async () => {
    const t = new DomainTokens();
    await t.load([{ domain: 'a', file: file('a1', 'aaaaaaaaaaaaaaaa-1') }]);
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const huge = path.join(dir, 'huge');
    fs.closeSync(fs.openSync(huge, 'w'));
    fs.truncateSync(huge, MAX_TOKEN_FILE_BYTES + 1);
    const { problems } = await t.load([
      { domain: 'a', file: file('a2', 'short') },
      { domain: 'b', file: path.join(dir, 'missing') },
      { domain: 'c', file: file('c', 'cccccccccccccccc-same') },
      { domain: 'd', file: file('d', 'cccccccccccccccc-same') },
      { domain: 'e', file: fifo },
      { domain: 'f', file: '/dev/zero' },
      { domain: 'g', file: huge },
      { domain: 'h', file: dir },
    ]);
    expect(problems).toEqual([
      expect.stringMatching(/^domain a: token in .* must be 16/),
      expect.stringMatching(/^domain b: token file .* cannot read \(ENOENT\)/),
      expect.stringMatching(/^domain e: token file .* is a FIFO; only a regular file is read/),
      expect.stringMatching(/^domain f: token file \/dev\/zero is a character device/),
      expect.stringMatching(/^domain g: token file .* is 65537 bytes; at most 65536/),
      expect.stringMatching(/^domain h: token file .* is a directory/),
      expect.stringMatching(/^domains c and d share a token/),
    ]);
    expect(t.domainOf('aaaaaaaaaaaaaaaa-1')).toBe('a');
  });

  test('a token file every local user can read is taken, with a warning', async () => {
    const t = new DomainTokens();
    const r = await t.load([{ domain: 'a', file: file('open', 'aaaaaaaaaaaaaaaa-open', 0o644) }]);
    expect(r.problems).toEqual([]);
    expect(r.warnings).toEqual([expect.stringMatching(/readable by every local user \(mode 0644\); chmod 0600/)]);
    expect(t.domainOf('aaaaaaaaaaaaaaaa-open')).toBe('a');
  });
});
