/**
 * A small QMP client (QEMU Machine Protocol: one JSON object per line over a Unix socket).
 * No npm package is usable (see reference/hypervisors.md §4). Every wait has a time limit, so a
 * hung QEMU makes a call fail instead of hanging the daemon; the socket's close is reported as
 * "QEMU went away" (reliable even when QEMU is not our child).
 */
import { EventEmitter } from 'node:events';
import * as net from 'node:net';

export class QmpError extends Error {
  constructor(
    message: string,
    /** QMP error class (e.g. DeviceNotActive), or 'timeout' / 'closed' / 'protocol'. */
    readonly qmpClass: string,
  ) {
    super(message);
    this.name = 'QmpError';
  }
}

interface Pending {
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export interface QmpEvent {
  readonly event: string;
  readonly data: unknown;
}

/** One QMP session. Events: 'event' (QmpEvent), 'close'. */
export class QmpClient extends EventEmitter {
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private closedValue = false;

  private constructor(private readonly socket: net.Socket) {
    super();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('close', () => this.onClose());
    socket.on('error', () => undefined); // 'close' follows
  }

  /** Connects, reads the greeting and negotiates capabilities, all within `timeoutMs`. */
  static connect(socketPath: string, timeoutMs: number): Promise<QmpClient> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(socketPath);
      let greeting = '';
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new QmpError(`no QMP greeting on ${socketPath} within ${timeoutMs} ms`, 'timeout'));
      }, timeoutMs);
      const fail = (err: Error): void => {
        clearTimeout(timer);
        socket.destroy();
        reject(
          err instanceof QmpError ? err : new QmpError(`cannot connect to ${socketPath}: ${err.message}`, 'closed'),
        );
      };
      socket.once('error', fail);
      socket.setEncoding('utf8');
      const onGreeting = (chunk: string): void => {
        greeting += chunk;
        const nl = greeting.indexOf('\n');
        if (nl < 0) return;
        socket.off('data', onGreeting);
        socket.off('error', fail);
        let parsed: unknown;
        try {
          parsed = JSON.parse(greeting.slice(0, nl));
        } catch {
          fail(new QmpError('the QMP greeting is not JSON', 'protocol'));
          return;
        }
        if (typeof parsed !== 'object' || parsed === null || !('QMP' in parsed)) {
          fail(new QmpError('the peer is not a QMP server', 'protocol'));
          return;
        }
        const client = new QmpClient(socket);
        client.buffer = greeting.slice(nl + 1);
        const left = Math.max(1, timeoutMs);
        client
          .execute('qmp_capabilities', undefined, left)
          .then(() => {
            clearTimeout(timer);
            resolve(client);
          })
          .catch((err: unknown) => {
            clearTimeout(timer);
            client.close();
            reject(err instanceof Error ? err : new Error(String(err)));
          });
      };
      socket.on('data', onGreeting);
    });
  }

  get closed(): boolean {
    return this.closedValue;
  }

  /** Runs a QMP command; rejects with QmpError on an error reply, a time-out or a closed socket. */
  execute<T = unknown>(command: string, args: Record<string, unknown> | undefined, timeoutMs: number): Promise<T> {
    if (this.closedValue) return Promise.reject(new QmpError('the QMP connection is closed', 'closed'));
    const id = String(this.nextId++);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new QmpError(`QMP ${command} got no answer within ${timeoutMs} ms`, 'timeout'));
      }, timeoutMs);
      this.pending.set(id, { resolve: (v) => resolve(v as T), reject, timer });
      this.socket.write(
        `${JSON.stringify(args ? { execute: command, arguments: args, id } : { execute: command, id })}\n`,
      );
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line) this.onMessage(line);
    }
    if (this.buffer.length > 4 * 1024 * 1024) this.socket.destroy(); // a runaway peer
  }

  private onMessage(line: string): void {
    let msg: {
      id?: unknown;
      return?: unknown;
      error?: { class?: string; desc?: string };
      event?: string;
      data?: unknown;
    };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      return;
    }
    if (typeof msg.event === 'string') {
      this.emit('event', { event: msg.event, data: msg.data } satisfies QmpEvent);
      return;
    }
    const id = typeof msg.id === 'string' ? msg.id : undefined;
    const p = id === undefined ? undefined : this.pending.get(id);
    if (!p || id === undefined) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (msg.error) p.reject(new QmpError(msg.error.desc ?? 'QMP error', msg.error.class ?? 'GenericError'));
    else p.resolve(msg.return);
  }

  private onClose(): void {
    if (this.closedValue) return;
    this.closedValue = true;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new QmpError('QEMU closed the QMP connection', 'closed'));
    }
    this.pending.clear();
    this.emit('close');
  }
}
