/**
 * A hook API body with a field twice is refused (400) and changes nothing: JSON.parse would keep
 * the last value silently, while a proxy or log reader may keep the first.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NodeServiceClient } from '@magrathea/common';
import { getNode, nodeClient, spawnDaemon, statesOf, tmpDir } from '../helpers/processes';
import type { DaemonProcess } from '../helpers/processes';

const TOKEN = 'dup-token-meta-0123456789';

describe('hook API: duplicate keys', () => {
  let dir: string;
  let d: DaemonProcess;
  let c: NodeServiceClient;
  let url: string;

  beforeAll(async () => {
    dir = tmpDir('mg-dupkeys-');
    fs.writeFileSync(path.join(dir, 'meta.token'), TOKEN, { mode: 0o600 });
    d = await spawnDaemon({
      stateDir: path.join(dir, 'state'),
      config: `hookApi: { listen: "127.0.0.1:0" }\ndomains:\n  - { name: meta, tokenFile: ${dir}/meta.token }\n  - { name: priv, class: priority }\ndriver: { simulated: { latencyMs: { boot: 0 } } }\n`,
    });
    url = `http://127.0.0.1:${String(d.logs.find((l) => l.msg === 'magrathead ready')!.hookPort)}`;
    c = nodeClient(d.admin);
    for (let i = 0; i < 200 && statesOf(await getNode(c)).meta !== 'free'; i++)
      await new Promise((r) => setTimeout(r, 10));
  });
  afterAll(async () => {
    c?.close();
    await d?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const post = async (route: string, body: string): Promise<{ status: number; json: Record<string, unknown> }> => {
    const res = await fetch(`${url}${route}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body,
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };

  test('a field twice: 400 naming it, the domain unchanged; the same body without it is served', async () => {
    const before = await getNode(c);
    for (const body of [
      '{"job_id":"1.pbs","job_id":"2.pbs"}',
      '{"job_id" : "1.pbs", "preemptible":true, "job\\u005fid":"2.pbs"}',
      '{"domain":"meta","job_id":"1.pbs","domain":"meta"}',
    ]) {
      const r = await post('/v1/jobs/start', body);
      expect([r.status, r.json.error]).toEqual([400, 'invalid-argument']);
      expect(r.json.message).toMatch(/^the body has the field "(job_id|domain)" twice$/);
    }
    const end = await post('/v1/jobs/end', '{"job_id":"1.pbs","exit_status":0,"exit_status":1}');
    expect(end.status).toBe(400);
    const after = await getNode(c);
    expect(after.generation).toBe(before.generation);
    expect(statesOf(after).meta).toBe('free');
    // Keys inside strings, or the same key in separate objects of a value, are not duplicates.
    const ok = await post('/v1/jobs/start', '{"job_id":"3.pbs","domain":"meta"}');
    expect([ok.status, ok.json.ok]).toEqual([200, true]);
    const again = await post('/v1/jobs/end', '{"job_id":"3.pbs","exit_status":0}');
    expect(again.status).toBe(200);
  });
});
