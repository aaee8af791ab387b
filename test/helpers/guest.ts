/** The test guest of the QEMU tests (built by test/setup.sh) and whether it can be booted here. */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from './processes';

export const GUEST = path.join(ROOT, '.cache/guest');

/** qemu-system-x86_64 runs and the guest's kernel and initramfs are built. */
export function hasQemuGuest(): boolean {
  try {
    execFileSync('qemu-system-x86_64', ['--version'], { stdio: 'ignore' });
    return fs.existsSync(path.join(GUEST, 'vmlinux')) && fs.existsSync(path.join(GUEST, 'initrd.cpio.gz'));
  } catch {
    return false;
  }
}
