/** Real cgroups in tests: whether the v1 hierarchies the cgroup driver uses are writable here (root). */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const CGROUP_MOUNT = '/sys/fs/cgroup';
export const CGROUP_CONTROLLERS = ['freezer', 'cpu', 'cpuacct', 'memory'];

/** True when every v1 controller is writable; otherwise prints why `what` is skipped. */
export function cgroupsWritable(what: string): boolean {
  const ok = CGROUP_CONTROLLERS.every((c) => {
    try {
      fs.accessSync(path.join(CGROUP_MOUNT, c), fs.constants.W_OK);
      return true;
    } catch {
      return false;
    }
  });
  if (!ok) process.stdout.write(`${what} skipped: /sys/fs/cgroup v1 controllers are not writable here (needs root)\n`);
  return ok;
}

/**
 * Whatever state a test left the daemon's subtree `root` in: lifts the domains' memory limits,
 * thaws them (a frozen v1 task defers SIGKILL), kills every process in them, waits (at most
 * about 2 s per domain) for them to go, and removes the groups and the subtree from every
 * controller.
 */
export async function removeCgroupDomains(root: string, domains: readonly string[]): Promise<void> {
  for (const dom of domains) {
    const g = path.join(CGROUP_MOUNT, 'freezer', root, dom);
    try {
      fs.writeFileSync(path.join(CGROUP_MOUNT, 'memory', root, dom, 'memory.limit_in_bytes'), '-1');
    } catch {
      // no memory group (or gone)
    }
    try {
      fs.writeFileSync(path.join(g, 'freezer.state'), 'THAWED');
      for (const p of fs.readFileSync(path.join(g, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean))
        process.kill(Number(p), 'SIGKILL');
      for (let i = 0; i < 100 && fs.readFileSync(path.join(g, 'cgroup.procs'), 'utf8').trim() !== ''; i++)
        await new Promise((r) => setTimeout(r, 20));
    } catch {
      // group already gone
    }
  }
  // cgroup directories are removed with rmdir once their processes are gone.
  for (const ctl of CGROUP_CONTROLLERS)
    for (const p of [
      ...domains.map((dom) => path.join(CGROUP_MOUNT, ctl, root, dom)),
      path.join(CGROUP_MOUNT, ctl, root),
    ])
      try {
        fs.rmdirSync(p);
      } catch {
        // already gone
      }
}
