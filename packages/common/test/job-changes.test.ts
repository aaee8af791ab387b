/** Slim job-list changes: a job whose record changed (suspended on its own) travels again and replaces the kept one. */
import { applyJobChange, jobListChange } from '../src/job-changes';

describe('job-list changes', () => {
  const a = { id: 'a', suspended: false };
  const b = { id: 'b', suspended: false };
  const c = { id: 'c', suspended: false };

  test('appended and removed jobs, told by identity', () => {
    expect(jobListChange([a, b], [a, b, c])).toEqual({ removed: [], cleared: false, added: [c] });
    expect(jobListChange([a, b, c], [a, c])).toEqual({ removed: ['b'], cleared: false, added: [] });
    expect(jobListChange([a, b], [a, b])).toBeNull();
  });

  test('a job suspended alone is sent again and replaces the kept record in place', () => {
    const b2 = { ...b, suspended: true };
    const change = jobListChange([a, b, c], [a, b2, c]);
    expect(change).toEqual({ removed: [], cleared: false, added: [b2] });
    const kept = applyJobChange(new Map([a, b, c].map((j) => [j.id, j])), change!);
    expect([...kept.values()]).toEqual([a, b2, c]);
  });
});
