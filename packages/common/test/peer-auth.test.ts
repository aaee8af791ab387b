/** PeerAuthenticator and FailureLimiter without a network: certificates made by openssl here. */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { X509Certificate } from 'node:crypto';
import fc from 'fast-check';
import { commonName, FailureLimiter, PeerAuthenticator } from '../src/peer-auth';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pa-'));
const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
const key = (f: string) => ssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', f);
key('ca.key');
ssl('req', '-x509', '-new', '-key', 'ca.key', '-days', '10', '-subj', '/CN=ca', '-out', 'ca.pem');
key('ca2.key');
ssl('req', '-x509', '-new', '-key', 'ca2.key', '-days', '10', '-subj', '/CN=ca', '-out', 'ca2.pem');
const issue = (cn: string, ca: string, out: string) => {
  key(`${out}.key`);
  ssl('req', '-new', '-key', `${out}.key`, '-subj', `/CN=${cn}`, '-out', `${out}.csr`);
  ssl(
    'x509',
    '-req',
    '-in',
    `${out}.csr`,
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-days',
    '5',
    '-out',
    `${out}.pem`,
  );
  return new X509Certificate(fs.readFileSync(path.join(dir, `${out}.pem`))).raw;
};
const admin = issue('admin', 'ca', 'admin');
const mon = issue('mon', 'ca', 'mon');
const forged = issue('admin', 'ca2', 'forged');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('PeerAuthenticator', () => {
  let now = Date.now();
  const auth = new PeerAuthenticator(
    fs.readFileSync(path.join(dir, 'ca.pem')),
    [
      { identity: 'admin', role: 'operator' },
      { identity: 'mon', role: 'reader' },
    ],
    () => now,
  );
  test('roles decide the methods', () => {
    expect(auth.check(admin, 'StartJob')).toMatchObject({
      ok: true,
      principal: { identity: 'admin', role: 'operator' },
    });
    expect(auth.check(mon, 'GetNode').ok).toBe(true);
    expect(auth.check(mon, 'StartJob')).toEqual({
      ok: false,
      code: 'permission-denied',
      message: 'role reader (identity mon) may not call StartJob',
    });
  });
  test('a certificate of another CA with the same CN, none, garbage, or out of its validity: unauthenticated', () => {
    expect(auth.check(forged, 'GetNode')).toMatchObject({ ok: false, code: 'unauthenticated' });
    expect(auth.check(null, 'GetNode')).toMatchObject({ ok: false, code: 'unauthenticated' });
    expect(auth.check(Buffer.from('nonsense'), 'GetNode')).toMatchObject({ ok: false, code: 'unauthenticated' });
    now = Date.now() + 6 * 86_400_000;
    expect(auth.check(admin, 'GetNode')).toMatchObject({
      ok: false,
      code: 'unauthenticated',
      message: expect.stringMatching(/expired/) as unknown,
    });
    now = Date.now();
  });
  test('commonName', () => {
    expect(commonName('C=CZ\nO=site\nCN=admin')).toBe('admin');
    expect(commonName('O=site')).toBeNull();
  });
});

describe('FailureLimiter', () => {
  test('a failure waits step × (failures beyond the free ones within the window), of its source or of everyone, at most maxDelay', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.record({ gap: fc.integer({ min: 0, max: 5000 }), source: fc.constantFrom('a', 'b', 'c') }), {
          maxLength: 200,
        }),
        (limit, events) => {
          let t = 0;
          const l = new FailureLimiter(limit, 60_000, () => t, { stepMs: 100, maxDelayMs: 2000, globalFactor: 2 });
          const seen: { t: number; source: string }[] = [];
          for (const e of events) {
            t += e.gap;
            seen.push({ t, source: e.source });
            const recent = seen.filter((x) => t - x.t < 60_000);
            const own = recent.filter((x) => x.source === e.source).length - limit;
            const all = recent.length - 2 * limit;
            expect(l.fail(e.source)).toBe(Math.min(2000, Math.max(0, own, all) * 100));
          }
          expect(l.total).toBe(events.length);
        },
      ),
    );
  });

  test('the window runs on the clock it is given: a failure a window later is free again', () => {
    let t = 0;
    const l = new FailureLimiter(2, 60_000, () => t);
    expect([l.fail('a'), l.fail('a'), l.fail('a')]).toEqual([0, 0, 100]);
    t += 60_000;
    expect(l.fail('a')).toBe(0);
  });
});
