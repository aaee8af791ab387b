// @ts-check
'use strict';
/**
 * Starts and ends jobs through each daemon's real hook API, as the execjob hooks do: an
 * HTTP/1.1 POST with the domain's bearer token and a JSON body, on one keep-alive connection
 * per node (the hooks' `http.client` does the same per call). Requests to a node go one at a
 * time, in order (a start must reach the daemon before its end), so each connection carries
 * one request at a time and the answer is read by a small parser: status line, headers, a
 * `content-length` body (what the hook API always sends). Node's `http` client costs the
 * stand-in more CPU per request than the daemon's answer does, which would make the replay
 * measure its own PBS stand-in rather than the daemons.
 */
const net = require('node:net');

/** @typedef {import('./placement').SimNode} SimNode */
/** @typedef {import('./placement').Dom} Dom */
/** @typedef {{ status: number | undefined, body: Record<string, any> }} HookAnswer */

const HEADER_END = Buffer.from('\r\n\r\n');
/** Largest answer head (status line and headers), bytes. */
const MAX_HEAD = 16 * 1024;

/** One keep-alive connection to one daemon's hook API, one request at a time. */
class Connection {
  /** @param {number} port */
  constructor(port) {
    this.port = port;
    /** @type {net.Socket | null} */
    this.socket = null;
    /** Answers read on this socket so far (0: a fresh connection). */
    this.answered = 0;
    /** @type {Buffer} */
    this.buf = Buffer.alloc(0);
    /** @type {{ resolve: (a: HookAnswer) => void, reject: (e: Error) => void } | null} */
    this.pending = null;
  }

  /** @returns {net.Socket} the open socket, connecting when there is none */
  open() {
    if (this.socket && !this.socket.destroyed) return this.socket;
    const s = net.connect({ host: '127.0.0.1', port: this.port, noDelay: true });
    this.socket = s;
    this.answered = 0;
    this.buf = Buffer.alloc(0);
    // Only the current socket's events count: a closed socket's "close" can come after the next
    // request went out on a new one.
    s.on('data', (chunk) => {
      if (this.socket === s) this.onData(chunk);
    });
    const gone = (/** @type {Error} */ err) => {
      if (this.socket !== s) return;
      this.socket = null;
      const p = this.pending;
      this.pending = null;
      p?.reject(Object.assign(err, { reused: this.answered > 0 }));
    };
    s.on('error', gone);
    s.on('close', () => gone(Object.assign(new Error('connection closed by the daemon'), { code: 'ECONNRESET' })));
    return s;
  }

  /** @param {Buffer} chunk */
  onData(chunk) {
    if (!this.pending) {
      this.fail(new Error('the daemon sent data nobody asked for'));
      return;
    }
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const head = this.buf.indexOf(HEADER_END);
    if (head < 0) {
      if (this.buf.length > MAX_HEAD) this.fail(new Error('answer head too large'));
      return;
    }
    const lines = this.buf.subarray(0, head).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.1 (\d{3}) /.exec(lines[0] ?? '');
    const lengthLine = lines.find((l) => /^content-length:/i.test(l));
    const length = lengthLine ? Number(lengthLine.slice(lengthLine.indexOf(':') + 1).trim()) : NaN;
    if (!m || !Number.isSafeInteger(length) || length < 0) {
      this.fail(new Error(`not an HTTP answer with a content-length: ${JSON.stringify(lines[0])}`));
      return;
    }
    const end = head + HEADER_END.length + length;
    if (this.buf.length < end) return;
    const text = this.buf.subarray(head + HEADER_END.length, end).toString('utf8');
    if (this.buf.length > end) {
      this.fail(new Error('data after the answer (nothing was asked)'));
      return;
    }
    this.buf = Buffer.alloc(0);
    this.answered++;
    const p = this.pending;
    this.pending = null;
    if (lines.some((l) => /^connection:\s*close/i.test(l))) this.socket?.end();
    try {
      p?.resolve({ status: Number(m[1]), body: JSON.parse(text) });
    } catch (e) {
      p?.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }

  /** @param {Error} err the connection is unusable: drop it and fail the request */
  fail(err) {
    const p = this.pending;
    this.pending = null;
    this.socket?.destroy();
    this.socket = null;
    p?.reject(err);
  }

  /**
   * @param {string} route
   * @param {string} token
   * @param {object} body
   * @returns {Promise<HookAnswer>}
   */
  request(route, token, body) {
    return new Promise((resolve, reject) => {
      if (this.pending) throw new Error('internal: a request is already in flight on this connection');
      const data = JSON.stringify(body);
      const s = this.open();
      this.pending = { resolve, reject };
      s.write(
        `POST ${route} HTTP/1.1\r\nhost: 127.0.0.1:${this.port}\r\nauthorization: Bearer ${token}\r\n` +
          `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(data)}\r\n\r\n${data}`,
      );
    });
  }

  close() {
    this.socket?.destroy();
    this.socket = null;
  }
}

class HookClient {
  constructor() {
    /** @type {Map<number, Connection>} hook port → its connection */
    this.connections = new Map();
  }

  /**
   * One request at a time per node, in order (a start must reach the daemon before its end).
   * @param {SimNode} n
   * @param {Dom} dom
   * @param {string} route
   * @param {object} body
   * @returns {Promise<HookAnswer>}
   */
  post(n, dom, route, body) {
    const p = n.chain.then(() => this.postNow(n, dom, route, body));
    n.chain = p.catch(() => undefined);
    return p;
  }

  /**
   * @param {SimNode} n
   * @param {Dom} dom
   * @param {string} route
   * @param {object} body
   * @returns {Promise<HookAnswer>}
   */
  async postNow(n, dom, route, body) {
    let c = this.connections.get(n.hookPort);
    if (!c) {
      c = new Connection(n.hookPort);
      this.connections.set(n.hookPort, c);
    }
    try {
      return await c.request(route, n.tokens[dom], body);
    } catch (err) {
      // The daemon closed an idle keep-alive connection as we reused it: the request was not
      // processed (the race every keep-alive client has); send it again once, on a fresh connection.
      if (/** @type {{ reused?: boolean }} */ (err).reused) return c.request(route, n.tokens[dom], body);
      throw err;
    }
  }

  destroy() {
    for (const c of this.connections.values()) c.close();
    this.connections.clear();
  }
}

module.exports = { HookClient };
