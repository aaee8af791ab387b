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
