/** Hook API tokens rotate on SIGHUP without a restart; a bad rotation keeps the old tokens. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnDaemon, tmpDir } from '../helpers/processes';

test('SIGHUP re-reads the token files', async () => {
  const dir = tmpDir('mg-rot-');
  const tok = path.join(dir, 'a.token');
  fs.writeFileSync(tok, 'first-token-0123456789');
  const d = await spawnDaemon({
    stateDir: path.join(dir, 'state'),
    config: `hookApi: { listen: "127.0.0.1:0" }\ndomains: [{ name: a, tokenFile: ${tok} }]\ndriver: { simulated: { latencyMs: { boot: 0 } } }\n`,
  });
  const port = d.logs.find((l) => l.msg === 'magrathead ready')!.hookPort as number;
  const get = (t: string) =>
    fetch(`http://127.0.0.1:${port}/v1/domains/a`, { headers: { authorization: `Bearer ${t}` } }).then((r) => r.status);
  const waitLog = async (msg: string) => {
    for (let i = 0; i < 200 && !d.logs.some((l) => l.msg === msg); i++) await new Promise((r) => setTimeout(r, 10));
  };
  try {
    expect(await get('first-token-0123456789')).toBe(200);
    fs.writeFileSync(tok, 'second-token-0123456789');
    d.proc.kill('SIGHUP');
    await waitLog('hook API tokens reloaded');
    expect(await get('first-token-0123456789')).toBe(401);
    expect(await get('second-token-0123456789')).toBe(200);
    // A broken rotation (token too short) is refused and the current token keeps working.
    fs.writeFileSync(tok, 'short');
    d.proc.kill('SIGHUP');
    await waitLog('token reload failed; the previous tokens stay in force');
    expect(await get('second-token-0123456789')).toBe(200);
    expect(d.logs.some((l) => JSON.stringify(l).includes('second-token'))).toBe(false);
  } finally {
    await d.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
