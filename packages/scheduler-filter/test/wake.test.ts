/** Wake on demand: the pure plan (which domain boots for which queued job) and the qstat parser. */
import fc from 'fast-check';
import { domainEligibility, planWakes, wakeable } from '../src/core';
import type { QueuedJob, WakeDomain } from '../src/core';
import { parseQueuedJobs } from '../src/service/waker';

const IMAGES = ['centos', 'debian', ''];
const STATES = ['down-bootable', 'down', 'booting', 'occupied-booting', 'free', 'running-preemptible', 'occupied'];

const wakeDomainArb: fc.Arbitrary<WakeDomain> = fc
  .record({
    node: fc.constantFrom('n1', 'n2', 'n3'),
    reachable: fc.boolean(),
    name: fc.constantFrom('a', 'b', 'c'),
    class: fc.constantFrom('normal' as const, 'priority' as const),
    state: fc.constantFrom(...STATES),
    offline: fc.boolean(),
    held: fc.boolean(),
    image: fc.constantFrom(...IMAGES),
    wakeOnDemand: fc.boolean(),
    backingOff: fc.boolean(),
  })
  .map((r) => ({
    node: { name: r.node, reachable: r.reachable, generation: 1, domains: [] },
    domain: {
      name: r.name,
      class: r.class,
      state: r.state,
      offline: r.offline,
      held: r.held,
      preemptedCpuSeconds: 0,
      generation: 1,
      image: r.image,
    },
    vnode: `${r.node}-${r.name}`,
    wakeOnDemand: r.wakeOnDemand,
    backingOff: r.backingOff,
  }));

/** Domains with distinct vnodes (node/domain pairs), reachability the same for one node. */
const domainsArb = fc.uniqueArray(wakeDomainArb, { selector: (w) => w.vnode, maxLength: 9 }).map((ds) =>
  ds.map((w) => ({
    ...w,
    node: { ...w.node, reachable: ds.find((x) => x.node.name === w.node.name)!.node.reachable },
  })),
);
const jobsArb = fc
  .array(
    fc.record({ image: fc.constantFrom(...IMAGES), jobClass: fc.constantFrom('normal' as const, 'priority' as const) }),
    { maxLength: 12 },
  )
  .map((js) => js.map((j, i): QueuedJob => ({ id: `${i + 1}.server`, ...j })));

const key = (node: string, domain: string): string => `${node}/${domain}`;
const isBooting = (w: WakeDomain): boolean => w.domain.state === 'booting' || w.domain.state === 'occupied-booting';

describe('planWakes', () => {
  test('wakes only wakeable domains matching the job, each at most once, one per node, none on a node already booting', () => {
    fc.assert(
      fc.property(jobsArb, domainsArb, (jobs, domains) => {
        const wakes = planWakes(jobs, domains);
        const byKey = new Map(domains.map((w) => [key(w.node.name, w.domain.name), w]));
        const nodes = new Set<string>();
        const jobIds = new Set<string>();
        for (const x of wakes) {
          const w = byKey.get(key(x.node, x.domain))!;
          const j = jobs.find((k) => k.id === x.jobId)!;
          expect(wakeable(w)).toBe(true);
          expect(w.domain.image).toBe(j.image);
          expect(w.domain.class).toBe(j.jobClass);
          expect(nodes.has(x.node)).toBe(false);
          expect(jobIds.has(x.jobId)).toBe(false);
          expect(domains.some((d) => d.node.name === x.node && isBooting(d))).toBe(false);
          nodes.add(x.node);
          jobIds.add(x.jobId);
        }
      }),
    );
  });

  test('never boots more domains for an image and class than jobs wait beyond what boots or accepts already', () => {
    fc.assert(
      fc.property(jobsArb, domainsArb, (jobs, domains) => {
        const wakes = planWakes(jobs, domains);
        for (const image of IMAGES.filter(Boolean))
          for (const cls of ['normal', 'priority'] as const) {
            const waiting = jobs.filter((j) => j.image === image && j.jobClass === cls).length;
            const covered = domains.filter(
              (w) =>
                w.domain.image === image &&
                (isBooting(w) ? w.domain.class === cls : domainEligibility(w.node, w.domain).accepts.includes(cls)),
            ).length;
            const woken = wakes.filter(
              (x) => x.image === image && jobs.find((j) => j.id === x.jobId)!.jobClass === cls,
            );
            expect(woken.length).toBeLessThanOrEqual(Math.max(0, waiting - covered));
          }
      }),
    );
  });

  test('a waiting job is left without a wake-up only when no matching wakeable domain is on a free node', () => {
    fc.assert(
      fc.property(jobsArb, domainsArb, (jobs, domains) => {
        const wakes = planWakes(jobs, domains);
        const used = new Set(wakes.map((x) => key(x.node, x.domain)));
        const busy = new Set([...domains.filter(isBooting).map((w) => w.node.name), ...wakes.map((x) => x.node)]);
        const stillWaiting = jobs.filter((j) => j.image !== '').length > wakes.length;
        if (!stillWaiting) return;
        // Every wakeable domain left unused is on a busy node, or no uncovered job asks for it.
        for (const w of domains.filter((d) => wakeable(d) && !used.has(key(d.node.name, d.domain.name)))) {
          if (busy.has(w.node.name)) continue;
          const asking = jobs.filter((j) => j.image === w.domain.image && j.jobClass === w.domain.class).length;
          const covered = domains.filter(
            (x) =>
              x.domain.image === w.domain.image &&
              (isBooting(x)
                ? x.domain.class === w.domain.class
                : domainEligibility(x.node, x.domain).accepts.includes(w.domain.class)),
          ).length;
          const woken = wakes.filter((x) => x.image === w.domain.image).length;
          expect(asking - covered - woken).toBeLessThanOrEqual(0);
        }
      }),
    );
  });

  test('a pending wake-up counts as booting: asking again wakes nothing more', () => {
    fc.assert(
      fc.property(jobsArb, domainsArb, (jobs, domains) => {
        const first = planWakes(jobs, domains);
        const pending = new Set(first.map((x) => key(x.node, x.domain)));
        expect(planWakes(jobs, domains, pending)).toEqual([]);
      }),
    );
  });

  const down = (node: string, name: string, image: string, over: Partial<WakeDomain> = {}): WakeDomain => ({
    node: { name: node, reachable: true, generation: 1, domains: [] },
    domain: {
      name,
      class: 'normal',
      state: 'down-bootable',
      offline: false,
      preemptedCpuSeconds: 0,
      generation: 1,
      image,
    },
    vnode: `${node}-${name}`,
    wakeOnDemand: true,
    backingOff: false,
    ...over,
  });

  test('examples: queue order, back-off, a free domain of the image, a domain not woken on demand', () => {
    const jobs: QueuedJob[] = [
      { id: '1.s', image: 'centos', jobClass: 'normal' },
      { id: '2.s', image: 'centos', jobClass: 'normal' },
      { id: '3.s', image: 'debian', jobClass: 'normal' },
    ];
    expect(
      planWakes(jobs, [down('n1', 'a', 'centos'), down('n2', 'a', 'centos')]).map((w) => [w.jobId, w.vnode]),
    ).toEqual([
      ['1.s', 'n1-a'],
      ['2.s', 'n2-a'],
    ]);
    expect(
      planWakes(jobs, [down('n1', 'a', 'centos', { backingOff: true }), down('n2', 'a', 'centos')]).map((w) => w.vnode),
    ).toEqual(['n2-a']);
    expect(planWakes(jobs, [down('n1', 'a', 'debian', { wakeOnDemand: false })])).toEqual([]);
    const free = down('n3', 'a', 'centos');
    const up = { ...free, domain: { ...free.domain, state: 'free' } };
    expect(planWakes(jobs, [up, down('n1', 'a', 'centos')]).map((w) => w.jobId)).toEqual(['2.s']);
    // Two domains of one node: only one boots at a time.
    expect(planWakes(jobs, [down('n1', 'a', 'centos'), down('n1', 'b', 'debian')]).map((w) => w.vnode)).toEqual([
      'n1-a',
    ]);
  });
});

describe('parseQueuedJobs', () => {
  test('queued jobs in order with the image and class from Resource_List or the select', () => {
    const json = JSON.stringify({
      Jobs: {
        '7.pbs': { job_state: 'Q', Resource_List: { select: '1:ncpus=1:magrathea_image=centos', magrathea: 'normal' } },
        '8.pbs': { job_state: 'R', Resource_List: { magrathea_image: 'centos' } },
        '9.pbs': {
          job_state: 'Q',
          Resource_List: { select: '1:ncpus=2' },
          schedselect: '1:ncpus=2:magrathea=priority:magrathea_image=debian',
        },
        '10.pbs': { job_state: 'Q', Resource_List: { magrathea_image: 'egee' } },
        '11.pbs': { job_state: 'Q' },
      },
    });
    expect(parseQueuedJobs(json)).toEqual([
      { id: '7.pbs', image: 'centos', jobClass: 'normal' },
      { id: '9.pbs', image: 'debian', jobClass: 'priority' },
      { id: '10.pbs', image: 'egee', jobClass: 'normal' },
      { id: '11.pbs', image: '', jobClass: 'normal' },
    ]);
    expect(parseQueuedJobs('{}')).toEqual([]);
    expect(() => parseQueuedJobs('not json')).toThrow();
  });
});
