/**
 * Flap damping end to end: a domain that keeps dropping is held out of scheduling (the real
 * filter publishes it as accepting nothing, the CLI shows the hold), and comes back by itself
 * when the hold ends.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { NodeMessage } from '@magrathea/common';
import { loadMagratheaApi } from '@magrathea/common';
import { cli, nodeClient, spawnDaemon, spawnFilter, tmpDir, unary } from '../helpers/processes';

const api = loadMagratheaApi();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a flapping domain is held out of scheduling, visible in status, and released when the hold ends', async () => {
  const dir = tmpDir('mg-flap-');
  const d = await spawnDaemon({
    stateDir: path.join(dir, 'state'),
    config: `
flapDamping: { maxFlaps: 2, windowMs: 60000, holdMs: 3000 }
driver: { kind: simulated, simulated: { latencyMs: { boot: 0 } } }
domains:
  - { name: meta, class: normal }
  - { name: priv, class: priority }
`,
  });
  const cfg = path.join(dir, 'filter.yaml');
  fs.writeFileSync(
    cfg,
    `listen: { grpc: "127.0.0.1:0", http: "127.0.0.1:0" }\nnodes:\n  - { name: n1, address: "127.0.0.1:${d.port}" }\n`,
  );
  const f = await spawnFilter(cfg);
  const c = nodeClient(d.admin);
  const cs = new api.magrathea.v1.ClusterService(`127.0.0.1:${f.grpcPort}`, grpc.credentials.createInsecure());
  type Listed = { nodes: { vnodes: { domain: string; magrathea: string; reason: string }[] }[] };
  const vnode = async () =>
    (await unary<object, Listed>(cs, cs.ListNodes, {})).nodes[0]?.vnodes.find((v) => v.domain === 'meta');
  const until = async (pred: () => Promise<boolean>, what: string, ms = 5000) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (await pred()) return;
      await sleep(50);
    }
    throw new Error(`timed out: ${what}`);
  };
  try {
    await until(async () => (await vnode())?.magrathea === 'normal', 'meta published as normal');
    // Two drops: counted, not held yet.
    for (let i = 0; i < 2; i++) {
      await unary(c, c.DomainAction, { domain: 'meta', action: 'down' });
      await unary(c, c.DomainAction, { domain: 'meta', action: 'boot' });
      await until(async () => (await vnode())?.magrathea === 'normal', 'meta back');
    }
    let meta = (await unary<object, NodeMessage>(c, c.GetNode, {})).domains.find((x) => x.name === 'meta')!;
    expect(meta.flap_count).toBe(2);
    expect(meta.held_until_ms).toBe('0');
    // The third drop within the window holds it.
    await unary(c, c.DomainAction, { domain: 'meta', action: 'down' });
    await unary(c, c.DomainAction, { domain: 'meta', action: 'boot' });
    meta = (await unary<object, NodeMessage>(c, c.GetNode, {})).domains.find((x) => x.name === 'meta')!;
    expect(meta.state).toBe('free');
    expect(meta.flap_count).toBe(3);
    expect(Number(meta.held_until_ms)).toBeGreaterThan(Date.now());
    await until(async () => (await vnode())?.reason === 'held: flapping (flap damping)', 'published as held');
    expect((await vnode())?.magrathea).toBe('none');
    const st = await cli(['status', '--node', d.addr]);
    expect(st.stdout).toMatch(/HELD until .* \(flapping: 3 drops\)/);
    expect(d.logs.some((l) => l.msg === 'domain flapping: held out of scheduling' && l.domain === 'meta')).toBe(true);
    // The hold ends by itself: the filter re-evaluates and publishes the domain again.
    await until(async () => (await vnode())?.magrathea === 'normal', 'released after the hold', 8000);
  } finally {
    cs.close();
    c.close();
    await f.stop();
    await d.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);
