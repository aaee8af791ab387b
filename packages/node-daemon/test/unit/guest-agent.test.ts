/**
 * The guest agent channel without a guest: the client against a scripted agent on a real Unix
 * socket (including hostile ones), the guest scripts and their parsers, and the reclaim planner.
 * The same client against the reference agent in a real QEMU guest: test/integration/guest-agent.test.ts.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import {
  AgentError,
  GuestAgent,
  jobCgroup,
  MAX_LINE,
  parseMemInfo,
  parseSignalled,
  selectorProblem,
  signalJobsScript,
} from '../../src/hypervisor/guest-agent';
import { CLOSE_ENOUGH, nextStep, reclaimTarget, watch } from '../../src/hypervisor/qemu/reclaim-plan';

const MiB = 1024 * 1024;

describe('guest agent client against a scripted agent', () => {
  let dir: string;
  let server: net.Server;
  let sockPath: string;
  /** How the scripted agent answers one request line. */
  let answer: (req: Record<string, unknown>, raw: Buffer, sock: net.Socket) => void;
  const sockets: net.Socket[] = [];

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ga-'));
    sockPath = path.join(dir, 'ga.sock');
    server = net.createServer((sock) => {
      sockets.push(sock);
      let buf = Buffer.alloc(0);
      sock.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        let nl: number;
        while ((nl = buf.indexOf(0x0a)) >= 0) {
          const raw = buf.subarray(0, nl);
          buf = buf.subarray(nl + 1);
          const text = Buffer.from(raw.filter((b) => b !== 0xff)).toString('utf8');
          if (text.trim()) answer(JSON.parse(text) as Record<string, unknown>, raw, sock);
        }
      });
      sock.on('error', () => undefined);
    });
    await new Promise<void>((r) => server.listen(sockPath, r));
  });
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A well-behaved agent: sync, ping, and guest-exec of scripts that "exit" with their length. */
  const wellBehaved = (req: Record<string, unknown>, raw: Buffer, sock: net.Socket): void => {
    const args = (req.arguments ?? {}) as Record<string, unknown>;
    switch (req.execute) {
      case 'guest-sync-delimited':
        expect(raw[0]).toBe(0xff); // the client resets the agent's parser first
        sock.write(Buffer.concat([Buffer.from([0xff]), Buffer.from(`{"return": ${String(args.id)}}\n`)]));
        break;
      case 'guest-ping':
        sock.write('{"return": {}}\n');
        break;
      case 'guest-exec':
        sock.write(`{"return": {"pid": 42}}\n`);
        break;
      case 'guest-exec-status':
        sock.write(
          `{"return": {"exited": true, "exitcode": 7, "out-data": "${Buffer.from('hello\n').toString('base64')}"}}\n`,
        );
        break;
      default:
        sock.write(`{"error": {"class": "CommandNotFound", "desc": "no ${String(req.execute)}"}}\n`);
    }
  };

  test('sync skips stale replies and noise before its own id; then requests get their replies in order', async () => {
    answer = (req, raw, sock) => {
      if (req.execute === 'guest-sync-delimited') {
        // Left over from an abandoned session, then the real answer.
        sock.write('garbage without a delimiter {"return": 1}\n');
        sock.write(Buffer.concat([Buffer.from([0xff]), Buffer.from('{"return": 12345}\n')]));
      }
      wellBehaved(req, raw, sock);
    };
    const a = await GuestAgent.connect(sockPath, 3000);
    try {
      await a.ping();
      await expect(a.execute('guest-nonsense')).rejects.toMatchObject({ agentClass: 'CommandNotFound' });
      const r = await a.exec('exit 7', 3000);
      expect(r).toEqual({ exitCode: 7, output: 'hello\n' });
    } finally {
      a.close();
    }
  });

  test('an agent that never answers: connect fails within its time limit with a clear error', async () => {
    answer = () => undefined;
    const t0 = Date.now();
    await expect(GuestAgent.connect(sockPath, 300)).rejects.toThrow(/did not answer guest-sync/);
    expect(Date.now() - t0).toBeLessThan(60_000); // bounded (generous: a loaded machine)
  });

  test('nobody listening: a clear error at once', async () => {
    await expect(GuestAgent.connect(path.join(dir, 'none.sock'), 1000)).rejects.toMatchObject({ agentClass: 'closed' });
  });

  test('hostile replies end the session with a protocol error: not JSON, no return, a line too long', async () => {
    for (const reply of ['not json at all\n', '{"no": "return"}\n', `"${'x'.repeat(MAX_LINE + 10)}"\n`]) {
      answer = (req, raw, sock) => {
        if (req.execute === 'guest-ping') sock.write(reply);
        else wellBehaved(req, raw, sock);
      };
      const a = await GuestAgent.connect(sockPath, 3000);
      const err = await a.ping().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(AgentError);
      expect((err as AgentError).agentClass).toBe('protocol');
      expect(a.closed).toBe(true);
      await expect(a.ping()).rejects.toMatchObject({ agentClass: 'closed' });
    }
  });

  test('guest-exec without a pid, or a status without "exited", is refused; a command that never ends times out', async () => {
    answer = (req, raw, sock) => {
      if (req.execute === 'guest-exec') sock.write('{"return": {"pid": "seven"}}\n');
      else wellBehaved(req, raw, sock);
    };
    let a = await GuestAgent.connect(sockPath, 3000);
    await expect(a.exec('true', 1000)).rejects.toThrow(/no process id/);
    answer = (req, raw, sock) => {
      if (req.execute === 'guest-exec-status') sock.write('{"return": {"exited": false}}\n');
      else wellBehaved(req, raw, sock);
    };
    a = await GuestAgent.connect(sockPath, 3000);
    try {
      await expect(a.exec('sleep 1000', 300)).rejects.toThrow(/did not finish within 300 ms/);
    } finally {
      a.close();
    }
  });

  test('too much noise before the sync delimiter ends the session', async () => {
    answer = (req, _raw, sock) => {
      if (req.execute === 'guest-sync-delimited') sock.write('z'.repeat(1_100_000));
    };
    await expect(GuestAgent.connect(sockPath, 5000)).rejects.toMatchObject({ agentClass: 'protocol' });
  });
});

describe('guest scripts', () => {
  test('selectors: only plain cgroup paths under /sys/fs/cgroup and process groups above 1 reach a script', () => {
    expect(selectorProblem({ cgroup: '/sys/fs/cgroup/jobs' })).toBeNull();
    expect(selectorProblem({ cgroup: '/sys/fs/cgroup/pbs_jobs.service/jobid/12.server' })).toBeNull();
    expect(selectorProblem({ processGroup: 4242 })).toBeNull();
    for (const bad of ['/tmp/x', '/sys/fs/cgroup/../../etc', "/sys/fs/cgroup/a'b", '/sys/fs/cgroup/a b', 'jobs', ''])
      expect(selectorProblem({ cgroup: bad })).toMatch(/not a cgroup directory/);
    for (const bad of [0, 1, -5, 1.5, Number.NaN]) expect(selectorProblem({ processGroup: bad })).toMatch(/not a job/);
    fc.assert(
      fc.property(fc.string(), (s) => {
        const p = `/sys/fs/cgroup/${s}`;
        if (selectorProblem({ cgroup: p }) === null) {
          // Whatever passes cannot break out of its single quotes or name a parent directory.
          expect(p).not.toMatch(/['"`$\\\s;|&<>()]/);
          expect(p.split('/')).not.toContain('..');
        } else expect(() => signalJobsScript({ cgroup: p }, 'STOP')).toThrow();
      }),
    );
  });

  test("a job's guest cgroup: its id under the jobs cgroup, any job id made safe (never a parent, never a quote)", () => {
    expect(jobCgroup('/sys/fs/cgroup/jobs', '123.server')).toEqual({ cgroup: '/sys/fs/cgroup/jobs/123.server' });
    expect(jobCgroup('/sys/fs/cgroup/jobs', '12[3].server')).toEqual({ cgroup: '/sys/fs/cgroup/jobs/12_3_.server' });
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), (id) => {
        const sel = jobCgroup('/sys/fs/cgroup/jobs', id) as { cgroup: string };
        expect(selectorProblem(sel)).toBeNull();
        expect(path.dirname(sel.cgroup)).toBe('/sys/fs/cgroup/jobs');
      }),
    );
    expect(() => jobCgroup('/sys/fs/cgroup/jobs', '')).toThrow(/not a cgroup directory/);
    // A job whose cgroup is gone (it ended) is continued as nothing; a stop says the cgroup is missing.
    expect(signalJobsScript({ cgroup: '/sys/fs/cgroup/jobs/j' }, 'CONT', true)).toContain('echo "signalled 0"; exit 0');
    expect(signalJobsScript({ cgroup: '/sys/fs/cgroup/jobs/j' }, 'STOP')).toContain('exit 3');
  });

  test('signal scripts name the selected jobs and the signal; their count is parsed, nonsense is not', () => {
    expect(signalJobsScript({ cgroup: '/sys/fs/cgroup/jobs' }, 'STOP')).toContain("cg='/sys/fs/cgroup/jobs'");
    expect(signalJobsScript({ cgroup: '/sys/fs/cgroup/jobs' }, 'CONT')).toContain('kill -CONT');
    expect(signalJobsScript({ processGroup: 77 }, 'STOP')).toContain('kill -STOP -77');
    expect(parseSignalled('signalled 3\n')).toBe(3);
    expect(parseSignalled('whatever\nsignalled 12')).toBe(12);
    expect(parseSignalled('signalled lots')).toBeNull();
  });

  test('meminfo: parsed when complete and coherent, refused otherwise', () => {
    const good = 'MemTotal: 1000 kB\nMemFree: 10 kB\nMemAvailable: 600 kB\nSwapTotal: 2000 kB\nSwapFree: 1500 kB\n';
    expect(parseMemInfo(good)).toEqual({
      totalBytes: 1000 * 1024,
      availableBytes: 600 * 1024,
      swapTotalBytes: 2000 * 1024,
      swapFreeBytes: 1500 * 1024,
    });
    expect(() => parseMemInfo(good.replace('MemAvailable: 600', 'MemAvailable: 6000'))).toThrow(/do not add up/);
    expect(() => parseMemInfo('MemTotal: 5 kB\n')).toThrow(/no MemAvailable/);
  });
});

describe('reclaim planner', () => {
  const bytes = fc.integer({ min: 0, max: 64 * 1024 }).map((m) => m * MiB);
  test('the target is never below what was asked, the minimum or what the guest must keep, nor above where it is', () => {
    fc.assert(
      fc.property(bytes, bytes, bytes, bytes, bytes, bytes, (actual, req, avail, swap, margin, min) => {
        const t = reclaimTarget({
          actualBytes: actual,
          requestedBytes: req,
          availableBytes: avail,
          swapFreeBytes: swap,
          marginBytes: margin,
          minimumBytes: min,
        });
        expect(t).toBeLessThanOrEqual(actual);
        const keep = Math.max(0, actual - avail - swap) + margin;
        if (t < actual) expect(t).toBeGreaterThanOrEqual(Math.max(req, min, keep));
      }),
    );
  });
  test('steps go down one step at a time and end exactly at the target', () => {
    const small = fc.integer({ min: 0, max: 4096 }).map((m) => m * MiB);
    fc.assert(
      fc.property(small, small, fc.integer({ min: 1, max: 4096 }), (a, b, stepMiB) => {
        const [target, start] = a < b ? [a, b] : [b, a];
        let cur = start;
        let n = 0;
        while (cur > target) {
          const next = nextStep(cur, target, stepMiB * MiB);
          expect(next).toBeLessThan(cur);
          expect(cur - next).toBeLessThanOrEqual(Math.max(MiB, stepMiB * MiB));
          expect(next).toBeGreaterThanOrEqual(target);
          cur = next;
          n++;
        }
        expect(cur).toBe(target);
        expect(n).toBeLessThanOrEqual(Math.ceil((start - target) / (stepMiB * MiB)) + 1);
      }),
    );
  });
  test('watching: reached when close to the target; never "wait" or "next-step" past the deadline', () => {
    const ms = fc.integer({ min: 0, max: 1_000_000 });
    fc.assert(
      fc.property(
        ms,
        ms,
        ms,
        ms,
        ms,
        bytes,
        bytes,
        bytes,
        bytes,
        (now, start, dl, lp, stall, actual, step, target, lead) => {
          const d = watch({
            nowMs: now,
            startMs: start,
            deadlineMs: dl,
            lastProgressMs: lp,
            stallMs: stall,
            actualBytes: actual,
            stepBytes: step,
            leadBytes: lead,
            targetBytes: target,
          });
          if (actual <= target + CLOSE_ENOUGH) expect(d).toBe('reached');
          else if (now - start >= dl) expect(d).toBe('deadline');
          else expect(['next-step', 'wait', 'stalled']).toContain(d);
          if (d === 'stalled') expect(now - lp).toBeGreaterThanOrEqual(stall);
          if (d === 'next-step') expect(actual).toBeLessThanOrEqual(step + Math.max(CLOSE_ENOUGH, lead));
        },
      ),
    );
  });
});
