// @ts-check
'use strict';
/** Starts and ends jobs through each daemon's real hook API, as the execjob hooks do. */
const http = require('node:http');

/** @typedef {import('./placement').SimNode} SimNode */
/** @typedef {import('./placement').Dom} Dom */
/** @typedef {{ status: number | undefined, body: Record<string, any> }} HookAnswer */

class HookClient {
  constructor() {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
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
   * @param {boolean} [retried]
   * @returns {Promise<HookAnswer>}
   */
  postNow(n, dom, route, body, retried = false) {
    return new Promise((resolve, reject) => {
      const data = JSON.stringify(body);
      const req = http.request(
        {
          host: '127.0.0.1',
          port: n.hookPort,
          path: route,
          method: 'POST',
          agent: this.agent,
          headers: {
            authorization: `Bearer ${n.tokens[dom]}`,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(data),
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c) => (text += c));
          res.on('end', () => {
            try {
              resolve({ status: res.statusCode, body: JSON.parse(text) });
            } catch (e) {
              reject(e instanceof Error ? e : new Error(String(e)));
            }
          });
        },
      );
      req.on('error', (/** @type {NodeJS.ErrnoException} */ err) => {
        // The daemon closed an idle keep-alive connection as we reused it: the request was not
        // processed (Node's documented race); send it again once on a fresh connection.
        if (!retried && req.reusedSocket && err.code === 'ECONNRESET')
          this.postNow(n, dom, route, body, true).then(resolve, reject);
        else reject(err);
      });
      req.end(data);
    });
  }

  destroy() {
    this.agent.destroy();
  }
}

module.exports = { HookClient };
