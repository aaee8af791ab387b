/**
 * The daemon's idle footprint (issue 15, BENCHMARKS.md): a daemon loads the modules of the
 * driver it is configured with and nothing of the others, nor the libraries only some configs
 * or calls need (systeminformation, node-cron, @grpc/reflection). Each would cost idle memory
 * taken from the VMs; this fails when one of them is imported eagerly again.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { getNode, nodeClient, spawnDaemon, statesOf, tmpDir, until } from '../helpers/processes';

const FIXTURE = path.resolve(__dirname, '../fixtures/loaded-modules.js');

/** What a config must not load unless it uses it: module file patterns by what they belong to. */
const LAZY: Record<string, RegExp> = {
  'qemu driver': /node-daemon\/dist\/hypervisor\/qemu\/(qemu-driver|qmp-client|reclaim|disk-args)\.js$/,
  'libvirt driver': /node-daemon\/dist\/hypervisor\/libvirt\/(libvirt-driver|virsh-session)\.js$/,
  'cgroup driver': /node-daemon\/dist\/hypervisor\/cgroup\/cgroup-driver\.js$/,
  'guest agent': /node-daemon\/dist\/hypervisor\/guest-agent\/(agent-client|guest-control|index)\.js$/,
  'image disks': /node-daemon\/dist\/images\/(domain-disks|lifecycle-disks)\.js$/,
  systeminformation: /node_modules\/systeminformation\//,
  'node-cron': /node_modules\/node-cron\//,
  '@grpc/reflection': /node_modules\/@grpc\/reflection\//,
};

/** Starts a daemon with `config`, waits for its domains to be up, and returns the files of its loaded modules. */
async function loadedModules(name: string, config: string): Promise<string[]> {
  const dir = tmpDir(`mg-lazy15-${name}-`);
  const out = path.join(dir, 'modules.txt');
  const d = await spawnDaemon({
    stateDir: path.join(dir, 'state'),
    config,
    nodeArgs: ['--require', FIXTURE],
    env: { MAGRATHEA_TEST_MODULES_FILE: out },
  });
  const client = nodeClient(d.admin);
  try {
    await until(
      async () => Object.values(statesOf(await getNode(client))).every((s) => s === 'free'),
      'the domains up',
      15_000,
    );
    d.proc.kill('SIGUSR2');
    await until(() => fs.existsSync(out), 'the module list written');
    return fs.readFileSync(out, 'utf8').split('\n');
  } finally {
    client.close();
    await d.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const loadedOf = (files: readonly string[]): string[] =>
  Object.entries(LAZY)
    .filter(([, re]) => files.some((f) => re.test(f)))
    .map(([what]) => what);

describe('magrathead loads only what its config uses', () => {
  test('a simulated-driver daemon, up and answering GetNode, holds no other driver nor the lazy libraries', async () => {
    const files = await loadedModules(
      'sim',
      'domains:\n  - { name: meta }\n  - { name: priv, class: priority }\ndriver: { kind: simulated, simulated: { latencyMs: { boot: 0 } } }\n',
    );
    // The list is real: the configured driver and the RPC server are in it.
    expect(files.some((f) => f.endsWith('node-daemon/dist/hypervisor/simulated/simulated-driver.js'))).toBe(true);
    expect(files.some((f) => f.endsWith('node-daemon/dist/rpc/rpc-server.js'))).toBe(true);
    expect(loadedOf(files)).toEqual([]);
  });

  test('a configured cron expression loads node-cron, and only that', async () => {
    const files = await loadedModules(
      'cron',
      'domains:\n  - { name: meta }\n  - { name: priv, class: priority }\ndriver: { kind: simulated, simulated: { latencyMs: { boot: 0 } } }\nreconcileCron: "*/10 * * * * *"\n',
    );
    expect(loadedOf(files)).toEqual(['node-cron']);
  });
});
