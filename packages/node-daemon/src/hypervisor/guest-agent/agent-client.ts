/**
 * A client of the qemu-guest-agent protocol (the agent inside a guest, reached over a
 * virtio-serial port that QEMU exposes on the host as a Unix socket), so a stock `qemu-ga`
 * works as well as the reference agent of minimal images (test/guest/magrathea-ga.sh).
 *
 * The protocol is one JSON object a line with no request ids, so the client first
 * re-synchronises: it sends 0xFF (which resets the agent's parser) and `guest-sync-delimited`
 * with a random id, drops everything up to the agent's 0xFF, and then waits for that id; stale
 * replies of an earlier, abandoned session are skipped. After that, one request is in flight at
 * a time and the next line is its reply.
 *
 * Everything the guest sends is untrusted: every wait has a time limit, a line longer than
 * MAX_LINE or more than MAX_SKIPPED bytes of noise ends the session, and replies are checked for
 * the shape each command must have before anything is read from them.
 */
import * as net from 'node:net';

/** Longest reply line accepted (a guest-exec-status with 16 KiB of output is far below it). */
export const MAX_LINE = 256 * 1024;
/** Bytes of stale or garbage output dropped while re-synchronising before giving up. */
export const MAX_SKIPPED = 1024 * 1024;
/** Longest command output kept, bytes (the rest is cut). */
export const MAX_OUTPUT = 64 * 1024;

export class AgentError extends Error {
  constructor(
    message: string,
    /** 'timeout' | 'closed' | 'protocol' | the agent's error class (e.g. CommandNotFound). */
    readonly agentClass: string,
  ) {
    super(message);
    this.name = 'AgentError';
  }
}

/** What a command run in the guest ended with. */
export interface ExecResult {
  readonly exitCode: number;
  /** Its output (standard output, and standard error where the agent merges it), cut at MAX_OUTPUT. */
  readonly output: string;
}

type Waiter = { resolve: (line: string) => void; reject: (err: Error) => void };

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/**
 * guest-exec-status is polled at 20, 40, then every 50 ms: a preemption's guest steps are short
 * commands on its critical path (stop the jobs, drop caches, swap on), and each one's end is seen
 * only at the next poll.
 */
const EXEC_POLL_MAX_MS = 50;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One session with a guest agent. Open with `GuestAgent.connect`, end with `close`. */
export class GuestAgent {
  private buffer = Buffer.alloc(0);
  private waiter: Waiter | null = null;
  private closedWhy: string | null = null;
  /** Until the sync's 0xFF has been seen, incoming bytes are noise to drop. */
  private synced = false;
  private skipped = 0;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly socket: net.Socket,
    private readonly timeoutMs: number,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => this.fail(new AgentError('the guest agent channel closed', 'closed')));
    socket.on('error', () => undefined); // 'close' follows
  }

  private static open(socketPath: string, waitMs: number, timeoutMs: number): Promise<net.Socket> {
    return new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection(socketPath);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new AgentError(`cannot connect to ${socketPath} within ${timeoutMs} ms`, 'timeout'));
      }, waitMs);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(new AgentError(`cannot connect to ${socketPath}: ${err.message}`, 'closed'));
      });
    });
  }

  /**
   * Connects to the agent's socket and re-synchronises; resolves once the agent answered.
   * `timeoutMs` bounds the whole handshake and, later, each request.
   */
  static async connect(socketPath: string, timeoutMs: number): Promise<GuestAgent> {
    // QEMU's chardev serves one client and stops listening while one is connected: right after
    // an earlier session closed, a connection may be refused until QEMU has seen that close.
    // Refusals are retried until the time limit; anything else (no socket) fails at once.
    const deadline = Date.now() + timeoutMs;
    let socket: net.Socket | null = null;
    while (socket === null) {
      try {
        socket = await GuestAgent.open(socketPath, Math.max(1, deadline - Date.now()), timeoutMs);
      } catch (err) {
        const refused = err instanceof AgentError && /ECONNREFUSED|EAGAIN/.test(err.message);
        if (!refused || Date.now() + 50 >= deadline) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const agent = new GuestAgent(socket, timeoutMs);
    try {
      await agent.sync();
    } catch (err) {
      agent.close();
      throw err;
    }
    return agent;
  }

  get closed(): boolean {
    return this.closedWhy !== null;
  }

  close(): void {
    this.socket.destroy();
    this.fail(new AgentError('the guest agent session was closed', 'closed'));
  }

  private async sync(): Promise<void> {
    const id = 1 + Math.floor(Math.random() * 2_000_000_000);
    this.synced = false;
    const reply = this.nextLine(this.timeoutMs, 'guest-sync-delimited');
    this.socket.write(Buffer.concat([Buffer.from([0xff]), Buffer.from(this.request('guest-sync-delimited', { id }))]));
    const deadline = Date.now() + this.timeoutMs;
    let line = await reply;
    // Replies of an abandoned earlier session may still come before ours.
    for (;;) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        parsed = null;
      }
      if (isObject(parsed) && parsed.return === id) return;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new AgentError(`the guest agent did not answer guest-sync within ${this.timeoutMs} ms`, 'timeout');
      line = await this.nextLine(left, 'guest-sync-delimited');
    }
  }

  private request(command: string, args?: Record<string, unknown>): string {
    return `${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`;
  }

  /** Runs one agent command; resolves with its `return` value (unchecked: the caller checks its shape). */
  execute(command: string, args?: Record<string, unknown>, timeoutMs = this.timeoutMs): Promise<unknown> {
    const run = async (): Promise<unknown> => {
      if (this.closedWhy !== null) throw new AgentError(this.closedWhy, 'closed');
      const reply = this.nextLine(timeoutMs, command);
      this.socket.write(this.request(command, args));
      const line = await reply;
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch {
        throw this.protocol(`the guest agent's reply to ${command} is not JSON`);
      }
      if (!isObject(msg)) throw this.protocol(`the guest agent's reply to ${command} is not an object`);
      if (isObject(msg.error)) {
        const cls = typeof msg.error.class === 'string' ? msg.error.class.slice(0, 64) : 'GenericError';
        const desc = typeof msg.error.desc === 'string' ? msg.error.desc.slice(0, 500) : 'no description';
        throw new AgentError(`the guest agent refused ${command}: ${desc}`, cls);
      }
      if (!('return' in msg)) throw this.protocol(`the guest agent's reply to ${command} has no "return"`);
      return msg.return;
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  async ping(): Promise<void> {
    await this.execute('guest-ping');
  }

  /**
   * Runs a shell script in the guest (`guest-exec` of /bin/sh with the script on its standard
   * input, then `guest-exec-status` until it ends) within `timeoutMs`.
   */
  async exec(script: string, timeoutMs: number): Promise<ExecResult> {
    const started = await this.execute('guest-exec', {
      path: '/bin/sh',
      arg: ['-s'],
      'input-data': Buffer.from(script).toString('base64'),
      'capture-output': true,
    });
    if (!isObject(started) || !Number.isSafeInteger(started.pid) || (started.pid as number) <= 0)
      throw this.protocol('guest-exec returned no process id');
    const pid = started.pid as number;
    const deadline = Date.now() + timeoutMs;
    let pause = 20;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) throw new AgentError(`the guest command did not finish within ${timeoutMs} ms`, 'timeout');
      const st = await this.execute('guest-exec-status', { pid }, Math.min(this.timeoutMs, Math.max(50, left)));
      if (!isObject(st) || typeof st.exited !== 'boolean') throw this.protocol('guest-exec-status has no "exited"');
      if (st.exited) {
        const exitCode = Number.isSafeInteger(st.exitcode) ? (st.exitcode as number) : -1;
        const out = decodeOutput(st['out-data']) + decodeOutput(st['err-data']);
        return { exitCode, output: out.slice(0, MAX_OUTPUT) };
      }
      await sleep(Math.min(pause, Math.max(1, deadline - Date.now())));
      pause = Math.min(EXEC_POLL_MAX_MS, pause * 2);
    }
  }

  private protocol(message: string): AgentError {
    const err = new AgentError(message, 'protocol');
    this.socket.destroy();
    this.fail(err);
    return err;
  }

  private nextLine(timeoutMs: number, what: string): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      if (this.closedWhy !== null) {
        reject(new AgentError(this.closedWhy, 'closed'));
        return;
      }
      const timer = setTimeout(() => {
        this.waiter = null;
        // The reply may still come later: the session is out of step, end it.
        this.socket.destroy();
        this.fail(new AgentError(`the guest agent did not answer ${what} within ${timeoutMs} ms`, 'timeout'));
        reject(new AgentError(`the guest agent did not answer ${what} within ${timeoutMs} ms`, 'timeout'));
      }, timeoutMs);
      this.waiter = {
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.drain();
    });
  }

  private onData(chunk: Buffer): void {
    if (!this.synced) {
      const ff = chunk.indexOf(0xff);
      if (ff < 0) {
        this.skipped += chunk.length;
        if (this.skipped > MAX_SKIPPED) this.protocol('the guest agent sent too much before answering guest-sync');
        return;
      }
      this.skipped += ff;
      this.synced = true;
      chunk = chunk.subarray(ff + 1);
    }
    this.buffer = Buffer.concat([this.buffer, chunk]);
    if (this.buffer.indexOf(0x0a) < 0 && this.buffer.length > MAX_LINE) {
      this.protocol(`the guest agent sent a line longer than ${MAX_LINE} bytes`);
      return;
    }
    this.drain();
  }

  private drain(): void {
    while (this.waiter) {
      const nl = this.buffer.indexOf(0x0a);
      if (nl < 0) return;
      if (nl > MAX_LINE) {
        this.protocol(`the guest agent sent a line longer than ${MAX_LINE} bytes`);
        return;
      }
      // 0xFF bytes (the delimiter of a sync reply) are not part of any JSON text.
      const line = Buffer.from(this.buffer.subarray(0, nl).filter((b) => b !== 0xff))
        .toString('utf8')
        .trim();
      this.buffer = this.buffer.subarray(nl + 1);
      if (!line) continue;
      const w = this.waiter;
      this.waiter = null;
      w.resolve(line);
    }
  }

  private fail(err: AgentError): void {
    if (this.closedWhy === null) this.closedWhy = err.message;
    const w = this.waiter;
    this.waiter = null;
    w?.reject(err);
  }
}

function decodeOutput(v: unknown): string {
  if (typeof v !== 'string' || v.length === 0) return '';
  // Only base64 is accepted; anything else is dropped rather than trusted.
  if (!/^[A-Za-z0-9+/=\s]*$/.test(v.slice(0, MAX_OUTPUT * 2))) return '';
  return Buffer.from(v.slice(0, Math.ceil((MAX_OUTPUT * 4) / 3) + 4), 'base64').toString('utf8');
}
