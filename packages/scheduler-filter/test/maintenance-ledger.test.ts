import fc from 'fast-check';
import { MaintenanceLedger } from '../src/service/accounting';

describe("MaintenanceLedger: what PBS's database lists as maintenance_jobs", () => {
  test('the last non-empty list stays: suspend A, B; resume A, B → B', () => {
    const l = new MaintenanceLedger();
    l.suspended('v', 'A');
    l.suspended('v', 'B');
    l.resumed('v', 'A');
    l.resumed('v', 'B');
    expect(l.referenced()).toEqual(['B']);
    l.purged('B');
    expect(l.referenced()).toEqual([]);
  });

  test('a job deleted while suspended stays listed; a later suspension on the vnode supersedes it', () => {
    const l = new MaintenanceLedger();
    l.suspended('v', 'A');
    l.gone('A');
    expect(l.referenced()).toEqual(['A']);
    l.suspended('v', 'C');
    l.resumed('v', 'C');
    expect(l.referenced()).toEqual(['C']);
  });

  test('property: the database list is the memory list after the last operation that left it non-empty', () => {
    const op = fc.record({ kind: fc.constantFrom('suspend', 'resume', 'gone'), job: fc.constantFrom('1', '2', '3') });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const l = new MaintenanceLedger();
        let mem = new Set<string>();
        let db = new Set<string>();
        for (const o of ops) {
          if (o.kind === 'suspend') {
            l.suspended('v', o.job);
            mem.add(o.job);
            db = new Set(mem);
          } else if (o.kind === 'resume') {
            if (!mem.has(o.job)) continue; // PBS refuses to resume what is not suspended
            l.resumed('v', o.job);
            mem.delete(o.job);
            if (mem.size > 0) db = new Set(mem);
          } else {
            l.gone(o.job);
            mem = new Set([...mem].filter((j) => j !== o.job));
          }
        }
        expect(l.referenced().sort()).toEqual([...db].sort());
      }),
    );
  });
});
