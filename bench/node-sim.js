// @ts-check
'use strict';
/**
 * Light stand-ins for node daemons (benchmark only): each is a real gRPC server on its own
 * port serving NodeService.WatchNode (snapshot, then changes), cycling through the
 * preemption scenario. Driven by its parent: {cmd:'rate', perSecond}.
 * With a third argument `rich`, domains carry what the status page shows (an image, a job while
 * running, the phases of the last preemption), and every change is remembered as
 * [node, generation, commit ms, domains changed] for {cmd:'commits'}.
 */
const grpc = require('@grpc/grpc-js');
const { loadMagratheaApi } = require('@magrathea/common');

const api = loadMagratheaApi();
const count = Number(process.argv[2]);
const prefix = process.argv[3];
const rich = process.argv[4] === 'rich';
/** The loopback address this simulator listens on (filter-scale spreads simulators over 127.0.0.0/8). */
const host = process.env.SIM_HOST ?? '127.0.0.1';
/** @type {[string, number, number, string[]][]} */
const commits = [];

/** @typedef {'meta' | 'egee' | 'priv'} SimDomain */
/** @typedef {Record<SimDomain, string>} Step */
/**
 * @typedef {object} LightNode
 * @property {string} name
 * @property {number} step where it is in SCENARIO
 * @property {number} gen
 * @property {Set<grpc.ServerWritableStream<unknown, unknown>>} streams open WatchNode streams
 * @property {number} [port]
 */

/** @type {Step[]} */
const SCENARIO = [
  { meta: 'free', egee: 'free', priv: 'free' },
  { meta: 'running-preemptible', egee: 'occupied', priv: 'occupied-would-preempt' },
  { meta: 'preempted', egee: 'occupied', priv: 'running-priority' },
  { meta: 'running-preemptible', egee: 'occupied', priv: 'occupied-would-preempt' },
];
/** @type {Step} */
const CLASS = { meta: 'normal', egee: 'normal', priv: 'priority' };
/** @type {SimDomain[]} */
const DOMAINS = ['meta', 'egee', 'priv'];

/**
 * @param {SimDomain} name
 * @param {string} state
 * @param {number} gen
 */
function domain(name, state, gen) {
  return {
    name,
    domain_class: CLASS[name],
    state,
    stored_state: state === 'running-priority' ? 'running' : state,
    generation: String(gen),
    since_ms: String(Date.now()),
    jobs: [],
    offline: false,
    preempted_cpu_seconds: 0,
    ...(rich ? richFacts(name, state, gen) : {}),
  };
}

/**
 * What a real daemon adds (rich mode): image, a job while running, the last preemption's phases.
 * @param {SimDomain} name
 * @param {string} state
 * @param {number} gen
 */
function richFacts(name, state, gen) {
  const now = Date.now();
  const running = state.startsWith('running') || state === 'preempted';
  return {
    image: `${name}-image`,
    jobs: running
      ? [
          {
            id: `${gen}.sim`,
            preemptible: name !== 'priv',
            cpus: 4,
            started_at_ms: String(now),
            preempted_seconds: 0,
            suspended: state === 'preempted',
          },
        ]
      : [],
    last_release:
      state === 'preempted'
        ? {
            at_ms: String(now),
            mode: 'pause',
            memory_released_bytes: '0',
            cpu_weight_before: 1024,
            cpu_weight_after: 2,
            phases: [
              { name: `preempt:${name}`, millis: 2.4 },
              { name: 'grow:priv', millis: 0.1 },
            ],
          }
        : null,
  };
}

/** @type {LightNode[]} */
const nodes = [];
/** Answers every unary call but GetNode: not implemented. */
const unimplemented = (/** @type {unknown} */ _c, /** @type {grpc.sendUnaryData<never>} */ cb) =>
  cb({ code: grpc.status.UNIMPLEMENTED });

async function main() {
  for (let i = 0; i < count; i++) {
    /** @type {LightNode} */
    const node = { name: `${prefix}${i}`, step: 0, gen: 1, streams: new Set() };
    const server = new grpc.Server();
    /** @type {import('@magrathea/common').NodeServiceHandlers} */
    const handlers = {
      GetNode: (_c, cb) => cb(null, {}),
      StartJob: unimplemented,
      EndJob: unimplemented,
      DomainAction: unimplemented,
      SetImage: unimplemented,
      ListImages: unimplemented,
      PullImage: unimplemented,
      RemoveImage: unimplemented,
      WatchNode: (call) => {
        const st = /** @type {Step} */ (SCENARIO[node.step]);
        call.write({
          generation: String(node.gen),
          snapshot: {
            name: node.name,
            generation: String(node.gen),
            domains: DOMAINS.map((d) => domain(d, st[d], node.gen)),
          },
        });
        node.streams.add(call);
        call.on('cancelled', () => node.streams.delete(call));
        call.on('error', () => node.streams.delete(call));
      },
    };
    server.addService(api.magrathea.v1.NodeService.service, handlers);
    node.port = await new Promise((res, rej) =>
      server.bindAsync(`${host}:0`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
    );
    nodes.push(node);
  }
  /** @type {NonNullable<typeof process.send>} */ (process.send)({
    ready: nodes.map((n) => ({ name: n.name, host, port: n.port })),
  });
}

function change() {
  const node = /** @type {LightNode} */ (nodes[Math.floor(Math.random() * nodes.length)]);
  const before = /** @type {Step} */ (SCENARIO[node.step]);
  node.step = (node.step + 1) % SCENARIO.length;
  node.gen++;
  const after = /** @type {Step} */ (SCENARIO[node.step]);
  const changed = DOMAINS.filter((d) => after[d] !== before[d]);
  const atMs = Date.now();
  if (rich) commits.push([node.name, node.gen, atMs, changed]);
  const ev = {
    generation: String(node.gen),
    change: {
      cause: 'bench',
      domain: 'meta',
      job_id: '',
      at_ms: String(atMs),
      domains: changed.map((d) => domain(d, after[d], node.gen)),
    },
  };
  for (const s of node.streams) s.write(ev);
}

/** @type {NodeJS.Timeout | null} */
let timer = null;
process.on('message', (/** @type {{ cmd: string, perSecond: number }} */ m) => {
  if (m.cmd === 'rate') {
    if (timer) clearInterval(timer);
    timer = null;
    if (m.perSecond > 0) {
      // Ticks of 10 ms, each emitting perSecond/100 changes (carrying fractions over).
      let owed = 0;
      timer = setInterval(() => {
        owed += m.perSecond / 100;
        while (owed >= 1) {
          change();
          owed--;
        }
      }, 10);
    }
  }
  if (m.cmd === 'commits')
    /** @type {NonNullable<typeof process.send>} */ (process.send)({ commits: commits.splice(0) });
  if (m.cmd === 'exit') process.exit(0);
});
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
