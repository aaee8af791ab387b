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

/** The guest can also read disks (virtio-blk, iso9660) and genisoimage builds context disks. */
export function hasDiskGuest(): boolean {
  try {
    execFileSync('genisoimage', ['--version'], { stdio: 'ignore' });
    return hasQemuGuest() && fs.readFileSync(path.join(GUEST, 'guest-version'), 'utf8').includes('disk-context');
  } catch {
    return false;
  }
}

/** A 4 MiB raw disk whose first line is the marker the guest prints (`MAGRATHEA-DISK base=MARKER …`). */
export function rawImage(marker: string): Buffer {
  const b = Buffer.alloc(4 * 1024 * 1024);
  b.write(`MARKER ${marker}\n`);
  return b;
}

/** What a domain's guest printed on its serial console so far (qemu driver's runDir), '' before its first boot. */
export function serialOf(runDir: string, domain: string): string {
  try {
    return fs.readFileSync(path.join(runDir, `${domain}.serial.log`), 'utf8');
  } catch {
    return '';
  }
}

/** Kills the QEMU processes of these domains left by a test (their pid files in the qemu driver's runDir). */
export function killGuests(runDir: string, domains: readonly string[]): void {
  for (const dom of domains) {
    try {
      process.kill(Number(fs.readFileSync(path.join(runDir, `${dom}.pid`), 'utf8')), 'SIGKILL');
    } catch {
      // not running
    }
  }
}
