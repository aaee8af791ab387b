/**
 * Disks of per-job lifecycles (domains[].lifecycle revert/reboot) beside a domain's overlay:
 *
 *   <disks>/<domain>/golden.qcow2       the overlay as it was when the golden state was saved
 *   <disks>/<domain>/golden.stamp       what it was taken for (image, VM settings)
 *   <disks>/<domain>/failed/<job>.qcow2 the overlay of a failed job (domains[].keepFailed)
 *
 * A new overlay is a copy of the golden one (a clone where the file system can, else a copy of
 * what the boot wrote): its backing file stays the cached base, so DomainDisks accepts it as it
 * is. Each step writes through a temporary file and a rename, so a crash leaves the old or the
 * new file, never half of one; every step is safe to run again.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { VmLifecycleDisks } from '../hypervisor/vm-disks';
import type { KeptOverlayInfo } from '../engine/view';

/** What lifecycle disks need of the domain disks. */
export interface OverlayPaths {
  overlayOf(domain: string): string;
}

const JOB_FILE = /^[A-Za-z0-9][A-Za-z0-9._@[\]-]*$/;

export class LifecycleDisks implements VmLifecycleDisks {
  private readonly kept = new Map<string, KeptOverlayInfo[]>();

  constructor(
    private readonly disks: OverlayPaths,
    /** domains[].keepFailed per domain (absent: 0). */
    private readonly keepFailed: Readonly<Record<string, number>>,
    private readonly now: () => number = () => Date.now(),
  ) {}

  private dir(domain: string): string {
    return path.dirname(this.disks.overlayOf(domain));
  }

  goldenOf(domain: string): string {
    return path.join(this.dir(domain), 'golden.qcow2');
  }

  private failedDir(domain: string): string {
    return path.join(this.dir(domain), 'failed');
  }

  hasGolden(domain: string, stamp: string): boolean {
    try {
      return (
        fs.existsSync(this.goldenOf(domain)) &&
        fs.readFileSync(path.join(this.dir(domain), 'golden.stamp'), 'utf8') === stamp
      );
    } catch {
      return false;
    }
  }

  async captureGolden(domain: string, stamp: string): Promise<void> {
    const golden = this.goldenOf(domain);
    await copyThrough(this.disks.overlayOf(domain), golden);
    await fsp.writeFile(`${golden}.stamp.tmp`, stamp);
    await fsp.rename(`${golden}.stamp.tmp`, path.join(this.dir(domain), 'golden.stamp'));
  }

  async dropGolden(domain: string): Promise<void> {
    await fsp.rm(path.join(this.dir(domain), 'golden.stamp'), { force: true });
    await fsp.rm(this.goldenOf(domain), { force: true });
  }

  async renew(domain: string, keepFor: string, fromGolden: boolean): Promise<boolean> {
    const overlay = this.disks.overlayOf(domain);
    const limit = this.keepFailed[domain] ?? 0;
    const dest = path.join(this.failedDir(domain), `${keepFor}.qcow2`);
    const keep = keepFor !== '' && limit > 0 && JOB_FILE.test(keepFor);
    if (keep && fs.existsSync(overlay)) {
      // Already kept (a reset run again after a crash): the overlay now is a later one.
      if (!fs.existsSync(dest)) {
        await fsp.mkdir(this.failedDir(domain), { recursive: true, mode: 0o700 });
        await fsp.rename(overlay, dest);
        const t = new Date(this.now());
        await fsp.utimes(dest, t, t);
      }
    }
    await fsp.rm(overlay, { force: true });
    await this.prune(domain, limit);
    if (fromGolden) await copyThrough(this.goldenOf(domain), overlay);
    return keep && fs.existsSync(dest);
  }

  /** Removes the oldest kept overlays beyond the limit and refreshes the list. */
  private async prune(domain: string, limit: number): Promise<void> {
    const list = this.scan(domain);
    for (const k of list.slice(0, Math.max(0, list.length - limit))) await fsp.rm(k.file, { force: true });
    this.kept.set(domain, list.slice(Math.max(0, list.length - limit)));
  }

  private scan(domain: string): KeptOverlayInfo[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.failedDir(domain)).filter((n) => n.endsWith('.qcow2'));
    } catch {
      return [];
    }
    return names
      .map((n) => {
        const file = path.join(this.failedDir(domain), n);
        const st = fs.statSync(file);
        return { jobId: n.slice(0, -'.qcow2'.length), file, bytes: st.size, keptAtMs: Math.round(st.mtimeMs) };
      })
      .sort((a, b) => a.keptAtMs - b.keptAtMs || a.jobId.localeCompare(b.jobId));
  }

  /** The kept overlays of a domain, oldest first. */
  keptOf(domain: string): readonly KeptOverlayInfo[] {
    let k = this.kept.get(domain);
    if (!k) {
      k = this.scan(domain);
      this.kept.set(domain, k);
    }
    return k;
  }
}

/** Copies through a temporary file and a rename (a clone where the file system can). */
async function copyThrough(from: string, to: string): Promise<void> {
  const tmp = `${to}.tmp`;
  await fsp.rm(tmp, { force: true });
  await fsp.copyFile(from, tmp, fs.constants.COPYFILE_FICLONE);
  await fsp.rename(tmp, to);
}
