/**
 * The real hook file, run by python3 with the `pbs` double, against a real magrathead
 * (child process) serving the hook API with one token per domain.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import type { NodeServiceClient } from '@magrathea/common';
import { compileSiteConfig, hookConfigJson } from '@magrathea/pbs-hooks';
import { runHook } from '../helpers/hooks';
import type { HookResult } from '../helpers/hooks';
import { getNode, nodeClient, spawnDaemon, statesOf, tmpDir } from '../helpers/processes';
import type { DaemonProcess } from '../helpers/processes';

const TOKENS = {
  meta: 'meta-token-0123456789abcdef',
  egee: 'egee-token-0123456789abcdef',
  priv: 'priv-token-0123456789abcdef',
};

describe('PBS hooks (python3 + pbs double) against a real magrathead', () => {
  let dir: string;
  let d: DaemonProcess;
  let client: NodeServiceClient;
  let hookUrl: string;
  let siteCfg: string;
  const domainCfg: Record<string, string> = {};

  const writeDomainConfig = (name: string, body: Record<string, unknown>): string => {
    const f = path.join(dir, `${name}.domain.json`);
    fs.writeFileSync(f, JSON.stringify(body));
    return f;
  };
  const writeSite = (name: string, overrides: Record<string, unknown>): string => {
    const f = path.join(dir, `${name}.hook.json`);
    fs.writeFileSync(
      f,
      JSON.stringify({
        ...hookConfigJson(compileSiteConfig({ extraPriorityQueues: ['express'], nonPreemptibleQueues: ['mpi'] })),
        ...overrides,
      }),
    );
    return f;
  };

  const begin = (
    domain: string,
    job: Record<string, unknown>,
    cfg = siteCfg,
    vnode = `${domain}-vn`,
  ): Promise<HookResult> =>
    runHook({
      event: {
        type: 'EXECJOB_BEGIN',
        job: { queue: 'workq', Resource_List: { nodect: 1, ncpus: 1 }, ...job },
        vnode_list: { [vnode]: { state: 0 } },
      },
      local_nodename: vnode,
      config_file: cfg,
    });
  const end = (domain: string, id: string, cfg = siteCfg, job: Record<string, unknown> = {}): Promise<HookResult> =>
    runHook({
      event: {
        type: 'EXECJOB_END',
        job: { id, queue: 'workq', ...job },
        vnode_list: { [`${domain}-vn`]: { state: 0 } },
      },
      local_nodename: `${domain}-vn`,
      config_file: cfg,
    });
  const periodic = (domain: string, cfg = siteCfg): Promise<HookResult> =>
    runHook({
      event: { type: 'EXECHOST_PERIODIC', vnode_list: { [`${domain}-vn`]: { state: 0 } }, job_list: {} },
      local_nodename: `${domain}-vn`,
      config_file: cfg,
    });

  beforeAll(async () => {
    dir = tmpDir('mg-hooks-');
    for (const [name, tok] of Object.entries(TOKENS))
      fs.writeFileSync(path.join(dir, `${name}.token`), `${tok}\n`, { mode: 0o600 });
    d = await spawnDaemon({
      stateDir: path.join(dir, 'state'),
      config: `
hookApi: { listen: "127.0.0.1:0" }
domains:
  - { name: meta, class: normal, tokenFile: ${dir}/meta.token }
  - { name: egee, class: normal, tokenFile: ${dir}/egee.token }
  - { name: priv, class: priority, tokenFile: ${dir}/priv.token }
driver: { kind: simulated, simulated: { latencyMs: { boot: 0 } } }
`,
    });
    const ready = d.logs.find((l) => l.msg === 'magrathead ready')!;
    hookUrl = `http://127.0.0.1:${String(ready.hookPort)}`;
    client = nodeClient(d.admin);
    for (let i = 0; i < 200 && Object.values(statesOf(await getNode(client))).some((s) => s !== 'free'); i++)
      await new Promise((r) => setTimeout(r, 10));
    for (const name of Object.keys(TOKENS)) {
      domainCfg[name] = writeDomainConfig(name, {
        daemon_url: hookUrl,
        domain: name,
        token_file: path.join(dir, `${name}.token`),
      });
    }
    siteCfg = writeSite('site', { domain_config: domainCfg.meta });
  });
  afterAll(async () => {
    client?.close();
    await d?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const siteFor = (domain: string, extra: Record<string, unknown> = {}) =>
    writeSite(`site-${domain}-${Object.keys(extra).join('-')}`, { domain_config: domainCfg[domain], ...extra });
  const noException = (r: HookResult) =>
    expect([r.outcome, r.exception]).toEqual([expect.stringMatching(/^(accept|reject|implicit-accept)$/), null]);

  describe('queuejob (server)', () => {
    const qj = (job: Record<string, unknown>, cfg: string | null = siteCfg) =>
      runHook({
        event: { type: 'QUEUEJOB', job },
        server: { queues: { workq: {}, iprio: {}, express: {} } },
        config_file: cfg,
      });

    test('qsub -I is routed to the priority queue and every chunk asks for the priority token', async () => {
      const r = await qj({ queue: 'workq', interactive: 1, Resource_List: { select: '2:ncpus=2+1:mem=1gb' } });
      noException(r);
      expect(r.outcome).toBe('accept');
      expect(r.job_sets).toEqual({
        queue: 'iprio',
        'Resource_List.select': '2:ncpus=2:magrathea=priority+1:mem=1gb:magrathea=priority',
      });
    });

    test('a job in a queue the site declares priority is routed too; a batch job keeps its queue and gets the normal token', async () => {
      expect((await qj({ queue: 'express', Resource_List: { select: '1:ncpus=1' } })).job_sets).toEqual({
        queue: 'iprio',
        'Resource_List.select': '1:ncpus=1:magrathea=priority',
      });
      const b = await qj({ queue: 'workq', Resource_List: { select: '4:ncpus=8' } });
      expect(b.job_sets).toEqual({ 'Resource_List.select': '4:ncpus=8:magrathea=normal' });
      const noSelect = await qj({ queue: null, Resource_List: { ncpus: 2 } });
      expect([noSelect.outcome, noSelect.job_sets]).toEqual(['accept', {}]);
    });

    test('a user who sets magrathea by hand is rejected with a clear message', async () => {
      for (const job of [
        { queue: 'workq', Resource_List: { select: '1:ncpus=1:magrathea=priority' } },
        { queue: 'workq', Resource_List: { MAGRATHEA: 'priority' } },
      ]) {
        const r = await qj(job);
        expect(r.outcome).toBe('reject');
        expect(r.reject_msg).toMatch(/magrathea resource is set by the system/);
      }
    });

    test('a site without the magrathea_image resource: reading it raises in the real pbs module; the hook copes', async () => {
      const r = await runHook({
        event: { type: 'QUEUEJOB', job: { queue: 'workq', Resource_List: { select: '1:ncpus=1' } } },
        server: { queues: { workq: {}, iprio: {} } },
        config_file: siteCfg,
        resourcedef: ['magrathea', 'magrathea_state', 'magrathea_rank'],
      });
      noException(r);
      expect(r.job_sets).toEqual({ 'Resource_List.select': '1:ncpus=1:magrathea=normal' });
    });

    test('never blocks: a missing hook config is logged and the job accepted', async () => {
      const r = await qj({ queue: 'workq', Resource_List: { select: '1:ncpus=1' } }, path.join(dir, 'missing.json'));
      noException(r);
      expect(r.outcome).toBe('accept');
      expect(r.logs.some(([, m]) => /hook config .* cannot be read/.test(m))).toBe(true);
    });
  });

  describe('guards against changing a job into a priority job (server)', () => {
    const server = { queues: { workq: {}, iprio: {}, express: {} }, managers: 'root@head,admin@*' };
    const guard = (type: string, extra: Record<string, unknown>, requestor = 'alice', cfg: string | null = siteCfg) =>
      runHook({ event: { type, requestor, requestor_host: 'login1', ...extra }, server, config_file: cfg });

    test('qalter of magrathea (in select or as a job resource) is refused for users, allowed for managers', async () => {
      for (const rl of [{ select: '1:ncpus=1:magrathea=priority' }, { magrathea: 'priority' }]) {
        const r = await guard('MODIFYJOB', { job: { Resource_List: rl } });
        noException(r);
        expect([r.outcome, r.reject_msg]).toEqual(['reject', expect.stringMatching(/cannot be changed with qalter/)]);
        const m = await guard('MODIFYJOB', { job: { Resource_List: rl } }, 'admin');
        expect(m.outcome).toBe('accept');
      }
      const other = await guard('MODIFYJOB', { job: { Resource_List: { select: '2:ncpus=4:magrathea_image=meta' } } });
      expect(other.outcome).toBe('accept');
    });

    test('qmove into a priority queue is refused for users; other moves pass', async () => {
      const r = await guard('MOVEJOB', { job: { queue: 'iprio' }, src_queue: 'workq' });
      expect([r.outcome, r.reject_msg]).toEqual([
        'reject',
        expect.stringMatching(/cannot be moved into the priority queue iprio/),
      ]);
      expect((await guard('MOVEJOB', { job: { queue: 'express' } })).outcome).toBe('reject');
      expect((await guard('MOVEJOB', { job: { queue: 'workq' } })).outcome).toBe('accept');
      expect((await guard('MOVEJOB', { job: { queue: 'iprio' } }, 'root')).outcome).toBe('accept');
    });

    test('a reservation naming magrathea is refused', async () => {
      const r = await guard('RESVSUB', { resv: { Resource_List: { select: '1:ncpus=1:magrathea=priority' } } });
      expect([r.outcome, r.reject_msg]).toEqual([
        'reject',
        expect.stringMatching(/remove magrathea from the reservation/),
      ]);
      expect((await guard('RESVSUB', { resv: { Resource_List: { select: '1:ncpus=1' } } })).outcome).toBe('accept');
    });

    test('the guards fail closed when the hook config is broken; queuejob still refuses a hand-set magrathea', async () => {
      const broken = path.join(dir, 'missing.json');
      const r = await guard('MODIFYJOB', { job: { Resource_List: { select: '1:ncpus=1' } } }, 'alice', broken);
      expect([r.outcome, r.reject_msg]).toEqual(['reject', expect.stringMatching(/hook misconfigured/)]);
      const q = await runHook({
        event: { type: 'QUEUEJOB', job: { Resource_List: { select: '1:ncpus=1:magrathea=priority' } } },
        server,
        config_file: broken,
      });
      expect([q.outcome, q.reject_msg]).toEqual(['reject', expect.stringMatching(/set by the system/)]);
    });

    test('a batch job submitted straight to the interactive queue is refused (managers excepted); images are checked', async () => {
      const imgs = writeSite('images', { images: ['meta', 'egee'] });
      const qj = (job: Record<string, unknown>, requestor = 'alice') =>
        runHook({ event: { type: 'QUEUEJOB', requestor, job }, server, config_file: imgs });
      const b = await qj({ queue: 'iprio', Resource_List: {} });
      expect([b.outcome, b.reject_msg]).toEqual(['reject', expect.stringMatching(/takes interactive jobs/)]);
      expect((await qj({ queue: 'iprio', Resource_List: {} }, 'admin')).outcome).toBe('accept');
      expect((await qj({ queue: 'iprio', interactive: 1, Resource_List: {} })).outcome).toBe('accept');
      const bad = await qj({ queue: 'workq', Resource_List: { select: '1:ncpus=1:magrathea_image=centos' } });
      expect([bad.outcome, bad.reject_msg]).toEqual(['reject', 'unknown image centos: this site runs meta, egee']);
      const good = await qj({ queue: 'workq', Resource_List: { select: '1:ncpus=1:magrathea_image=egee' } });
      expect(good.job_sets).toEqual({ 'Resource_List.select': '1:ncpus=1:magrathea_image=egee:magrathea=normal' });
    });
  });

  describe('job start and end (mom)', () => {
    test('normal start accepted; the vnode shows the new state; start in an occupied domain refused with rerun', async () => {
      const r = await begin('meta', { id: '10.pbs' }, siteFor('meta'));
      noException(r);
      expect(r.outcome).toBe('accept');
      expect(r.vnode_sets['meta-vn']).toMatchObject({
        'resources_available.magrathea': 'normal',
        'resources_available.magrathea_state': 'running-preemptible',
        comment: 'magrathea: running-preemptible',
      });
      expect(statesOf(await getNode(client))).toEqual({
        meta: 'running-preemptible',
        egee: 'occupied',
        priv: 'occupied-would-preempt',
      });

      const refused = await begin('egee', { id: '11.pbs' }, siteFor('egee'));
      noException(refused);
      expect(refused.outcome).toBe('reject');
      expect(refused.rerun).toBe(true);
      expect(refused.reject_msg).toMatch(/start of 11.pbs refused in egee: occupied/);
      expect(refused.vnode_sets['egee-vn']).toMatchObject({
        'resources_available.magrathea': 'none',
        'resources_available.magrathea_state': 'occupied',
      });
      expect((await getNode(client)).domains[1]!.jobs).toEqual([]);
    });

    test('priority start preempts the batch domain; its end releases it; periodic publication shows the right values', async () => {
      const p = await periodic('priv', siteFor('priv'));
      expect(p.vnode_sets['priv-vn']).toMatchObject({
        'resources_available.magrathea': 'priority',
        'resources_available.magrathea_state': 'occupied-would-preempt',
      });
      expect(p.vnode_sets['priv-vn']!['resources_available.magrathea_rank']).toBeGreaterThan(100);
      const e = await periodic('egee', siteFor('egee'));
      expect(e.vnode_sets['egee-vn']).toMatchObject({
        'resources_available.magrathea': 'none',
        'resources_available.magrathea_state': 'occupied',
        'resources_available.magrathea_rank': 0,
      });

      const r = await begin('priv', { id: '20.pbs', queue: 'iprio' }, siteFor('priv'));
      expect(r.outcome).toBe('accept');
      expect(statesOf(await getNode(client))).toEqual({
        meta: 'preempted',
        egee: 'occupied',
        priv: 'running-priority',
      });
      const m = await periodic('meta', siteFor('meta'));
      expect(m.vnode_sets['meta-vn']).toMatchObject({
        'resources_available.magrathea': 'none',
        'resources_available.magrathea_state': 'preempted',
      });

      const e2 = await end('priv', '20.pbs', siteFor('priv'));
      noException(e2);
      expect(e2.outcome).toBe('accept');
      expect(statesOf(await getNode(client))).toEqual({
        meta: 'running-preemptible',
        egee: 'occupied',
        priv: 'occupied-would-preempt',
      });
      // The end carries the job's exit status (Exit_status), and the daemon takes it.
      const e1 = await end('meta', '10.pbs', siteFor('meta'), { Exit_status: 3 });
      expect(e1.outcome).toBe('accept');
      expect(e1.logs.filter(([, msg]) => /refused|not recorded/.test(msg))).toEqual([]);
      expect(statesOf(await getNode(client))).toEqual({ meta: 'free', egee: 'free', priv: 'free' });
      // A retried end of the same job is fine (end hooks retry).
      const again = await end('meta', '10.pbs', siteFor('meta'));
      expect(again.outcome).toBe('accept');
      expect(again.logs.some(([, msg]) => /not known/.test(msg))).toBe(true);
    });

    test("as on a real mom: no nodect or exec_host, vnode_list holds the sisters' vnodes; hosts and CPUs come from exec_vnode", async () => {
      const r = await runHook({
        event: {
          type: 'EXECJOB_BEGIN',
          // What OpenPBS 23.06 passes a sister's execjob_begin (hook debug input of a select=2, scatter job).
          job: {
            id: '32.pbs',
            queue: 'workq',
            exec_vnode: '(other-vn:ncpus=1)+(meta-vn:ncpus=2)',
            Resource_List: { ncpus: 3, place: 'scatter' },
          },
          vnode_list: { 'other-vn': { state: 0 }, 'meta-vn': { state: 0 } },
        },
        local_nodename: 'meta-vn',
        config_file: siteFor('meta'),
      });
      expect(r.outcome).toBe('accept');
      expect(Object.keys(r.vnode_sets)).toEqual(['meta-vn']);
      expect((await getNode(client)).domains[0]!.jobs[0]).toMatchObject({ id: '32.pbs', preemptible: false, cpus: 2 });
      await end('meta', '32.pbs', siteFor('meta'));
    });

    test('with magrathea-filter publishing, a refused start takes the vnode out (magrathea=none) and writes no comment', async () => {
      const filterSite = (dom: string) => siteFor(dom, { publish_from_mom: false });
      const ok = await begin('meta', { id: '33.pbs' }, filterSite('meta'));
      expect([ok.outcome, ok.vnode_sets]).toEqual(['accept', {}]);
      const refused = await begin('egee', { id: '34.pbs' }, filterSite('egee'));
      expect(refused.outcome).toBe('reject');
      expect(refused.vnode_sets).toEqual({ 'egee-vn': { 'resources_available.magrathea': 'none' } });
      const p = await periodic('egee', filterSite('egee'));
      expect([p.outcome, p.vnode_sets]).toEqual(['accept', {}]);
      await end('meta', '33.pbs', filterSite('meta'));
    });

    test('multi-node jobs and jobs in non-preemptible queues start as non-preemptible', async () => {
      await begin(
        'meta',
        { id: '30.pbs', Resource_List: { nodect: 2, ncpus: 4 }, exec_vnode: '(meta-vn:ncpus=3)+(other:ncpus=1)' },
        siteFor('meta'),
      );
      let n = await getNode(client);
      expect(n.domains[0]!.jobs[0]).toMatchObject({ id: '30.pbs', preemptible: false, cpus: 3 });
      expect(n.domains[0]!.state).toBe('running');
      await end('meta', '30.pbs', siteFor('meta'));
      await begin('meta', { id: '31.pbs', queue: 'mpi' }, siteFor('meta'));
      n = await getNode(client);
      expect(n.domains[0]!.jobs[0]).toMatchObject({ id: '31.pbs', preemptible: false });
      await end('meta', '31.pbs', siteFor('meta'));
    });
  });

  describe('fail-safe paths', () => {
    test("domain A's token used for domain B is refused and changes nothing", async () => {
      const forged = writeDomainConfig('forged', {
        daemon_url: hookUrl,
        domain: 'egee',
        token_file: path.join(dir, 'meta.token'),
      });
      const before = (await getNode(client)).generation;
      const r = await begin('egee', { id: '40.pbs' }, writeSite('forged', { domain_config: forged }));
      noException(r);
      expect([r.outcome, r.rerun]).toEqual(['reject', true]);
      expect(r.reject_msg).toMatch(/forbidden/);
      expect((await getNode(client)).generation).toBe(before);
    });

    test('daemon unreachable: begin rejects with rerun; periodic publishes none; end retries and still accepts', async () => {
      const down = writeDomainConfig('down', {
        daemon_url: 'http://127.0.0.1:1',
        domain: 'meta',
        token_file: path.join(dir, 'meta.token'),
      });
      const cfg = writeSite('down', { domain_config: down, end_retries: 2, timeout: 1 });
      const b = await begin('meta', { id: '50.pbs' }, cfg);
      noException(b);
      expect([b.outcome, b.rerun]).toEqual(['reject', true]);
      expect(b.reject_msg).toMatch(/node daemon unreachable/);
      expect(b.vnode_sets['meta-vn']).toMatchObject({ comment: 'magrathea: node daemon unreachable' });
      const p = await periodic('meta', cfg);
      expect(p.vnode_sets['meta-vn']).toMatchObject({
        'resources_available.magrathea': 'none',
        'resources_available.magrathea_state': 'unreachable',
      });
      const e = await end('meta', '50.pbs', cfg);
      noException(e);
      expect(e.outcome).toBe('accept');
      expect(e.logs.filter(([, m]) => /EndJob 50.pbs attempt/.test(m))).toHaveLength(2);
    });

    test('a daemon answering garbage and a hanging daemon take the same fail-safe path, within the timeout', async () => {
      const garbage = http.createServer((_req, res) => res.end('<html>proxy error</html>'));
      const hang = http.createServer(() => undefined);
      await Promise.all([garbage, hang].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))));
      try {
        for (const [name, srv] of [
          ['garbage', garbage],
          ['hang', hang],
        ] as const) {
          const f = writeDomainConfig(name, {
            daemon_url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
            domain: 'meta',
            token: TOKENS.meta,
          });
          const r = await begin('meta', { id: `60-${name}.pbs` }, writeSite(name, { domain_config: f, timeout: 1 }));
          noException(r);
          expect([r.outcome, r.rerun]).toEqual(['reject', true]);
          // Cut by the hook's own time limit, well inside the hook alarm PBS would kill it at (30 s).
          expect(r.elapsed_ms).toBeLessThan(20_000);
        }
      } finally {
        hang.closeAllConnections();
        garbage.close();
        hang.close();
      }
    });

    test('unreadable or invalid hook and domain configs: begin rejects with rerun, never an exception', async () => {
      const bad = path.join(dir, 'bad.json');
      fs.writeFileSync(bad, '{ not json');
      const cases: [string, string][] = [
        [bad, 'hook misconfigured'],
        [writeSite('nodomain', { domain_config: path.join(dir, 'nope.json') }), 'domain config .* cannot be read'],
        [writeSite('badtimeout', { timeout: 'soon' }), 'hook misconfigured'],
      ];
      for (const [cfg, msg] of cases) {
        const r = await begin('meta', { id: '70.pbs' }, cfg);
        noException(r);
        expect([r.outcome, r.rerun]).toEqual(['reject', true]);
        expect(r.reject_msg).toMatch(new RegExp(msg));
      }
      const p = await periodic('meta', bad);
      noException(p);
      expect(p.vnode_sets['meta-vn']).toMatchObject({ 'resources_available.magrathea': 'none' });
      const e = await end('meta', '70.pbs', bad);
      expect(e.outcome).toBe('accept');
    });
  });

  describe('hook API bad input', () => {
    const req = (method: string, p: string, body: string | null, headers: Record<string, string> = {}) =>
      fetch(`${hookUrl}${p}`, {
        method,
        headers: { 'content-type': 'application/json', ...headers },
        ...(body !== null ? { body } : {}),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }));
    const auth = (t: string) => ({ authorization: `Bearer ${t}` });

    test('each bad request gets the right 4xx and changes nothing; the daemon keeps serving', async () => {
      const before = (await getNode(client)).generation;
      expect((await req('POST', '/v1/jobs/start', '{"job_id":"x"}')).status).toBe(401);
      expect((await req('POST', '/v1/jobs/start', '{"job_id":"x"}', auth('wrong-token-0123456789'))).status).toBe(401);
      expect((await req('POST', '/v1/jobs/start', '{"domain":"priv","job_id":"x"}', auth(TOKENS.meta))).status).toBe(
        403,
      );
      expect((await req('GET', '/v1/domains/priv', null, auth(TOKENS.meta))).status).toBe(403);
      expect((await req('POST', '/v1/jobs/start', '{not json', auth(TOKENS.meta))).body).toMatchObject({
        error: 'invalid-argument',
      });
      expect((await req('POST', '/v1/jobs/start', '[1,2]', auth(TOKENS.meta))).status).toBe(400);
      expect(
        (await req('POST', '/v1/jobs/start', '{"job_id":"x","surprise":1}', auth(TOKENS.meta))).body.message,
      ).toMatch(/unknown field/);
      expect((await req('POST', '/v1/jobs/start', '{"job_id":""}', auth(TOKENS.meta))).status).toBe(400);
      expect((await req('POST', '/v1/jobs/start', '{"job_id":"x","cpus":-1}', auth(TOKENS.meta))).status).toBe(400);
      expect(
        (await req('POST', '/v1/jobs/start', '{"job_id":"x","preemptible":"yes"}', auth(TOKENS.meta))).status,
      ).toBe(400);
      expect(
        (await req('POST', '/v1/jobs/start', JSON.stringify({ job_id: 'x'.repeat(10000) }), auth(TOKENS.meta))).status,
      ).toBe(413);
      const badExit = await req('POST', '/v1/jobs/end', '{"job_id":"x","exit_status":"failed"}', auth(TOKENS.meta));
      expect([badExit.status, badExit.body.message]).toEqual([
        400,
        "exit_status must be an integer (the job's exit status)",
      ]);
      expect((await req('POST', '/v1/jobs/end', '{"job_id":"x","exit_status":1.5}', auth(TOKENS.meta))).status).toBe(
        400,
      );
      expect((await req('GET', '/v1/jobs/start', null, auth(TOKENS.meta))).status).toBe(405);
      expect((await req('GET', '/v2/anything', null, auth(TOKENS.meta))).status).toBe(404);
      expect(
        (await req('POST', '/v1/jobs/start', '{"job_id":"x"}', { ...auth(TOKENS.meta), 'content-type': 'text/plain' }))
          .status,
      ).toBe(415);
      expect((await getNode(client)).generation).toBe(before);
      expect(d.logs.some((l) => JSON.stringify(l).includes(TOKENS.meta))).toBe(false);
    });

    test('a slow client is cut off and others are served meanwhile', async () => {
      const sock = net.connect(Number(new URL(hookUrl).port), '127.0.0.1');
      await new Promise((r) => sock.once('connect', r));
      sock.write(
        `POST /v1/jobs/start HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKENS.meta}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"jo`,
      );
      const ok = await req('GET', '/v1/domains/meta', null, auth(TOKENS.meta));
      expect(ok.body).toMatchObject({ ok: true, domain: 'meta', magrathea: 'normal', state: 'free' });
      const closed = await new Promise<string>((resolve) => {
        let data = '';
        sock.on('data', (b) => (data += b.toString()));
        sock.on('close', () => resolve(data));
      });
      expect(closed).toMatch(/^(|HTTP\/1\.1 408[^]*)$/);
    }, 20_000);
  });
});
