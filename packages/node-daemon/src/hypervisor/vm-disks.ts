/** What a VM driver asks of the image layer: the disks of a domain's VM, leased while it exists. */

/** Why the disks are asked for: a fresh boot (context rebuilt), a restore of a saved VM, a VM found running. */
export type DiskUse = 'boot' | 'restore' | 'adopt';

export interface VmDisk {
  /** Absolute path of the file. */
  readonly file: string;
  readonly format: 'qcow2' | 'raw';
  readonly readOnly: boolean;
  /** What it is: `root` (the copy-on-write overlay) or `context` (the NoCloud ISO). */
  readonly role: 'root' | 'context';
}

export interface VmNic {
  readonly bridge: string;
  /** Stable MAC, derived from node and domain. */
  readonly mac: string;
}

export interface VmDisks {
  /** Does this domain get its disks from here (it names a catalogue image)? */
  has(domain: string): boolean;
  /** Leases the base image (downloading it if needed), makes the overlay and (for a boot) the context disk. */
  prepare(domain: string, use: DiskUse): Promise<{ disks: readonly VmDisk[]; nic: VmNic | null }>;
  /** The VM is gone for good (shut down or vanished): the base may be evicted. */
  release(domain: string): void;
  /** The image the domain runs now ('' for none). */
  imageOf?(domain: string): string;
}

/**
 * The disk side of per-job lifecycles (domains[].lifecycle): a golden copy of the overlay taken
 * with the golden saved state, a fresh overlay per job, and the overlays of failed jobs kept.
 * Every method is safe to repeat after a crash in the middle of it.
 */
export interface VmLifecycleDisks {
  /** A golden overlay taken for the domain's current image and VM settings (`stamp`) exists. */
  hasGolden(domain: string, stamp: string): boolean;
  /** Copies the (quiescent) overlay as the golden one, stamped. */
  captureGolden(domain: string, stamp: string): Promise<void>;
  /** Removes the golden overlay (its saved state is the driver's). */
  dropGolden(domain: string): Promise<void>;
  /**
   * Ends the job's overlay: kept as `keepFor`'s (when that job failed and none is kept for it
   * yet; the oldest kept beyond the limit are removed), else removed. Then the golden overlay is
   * copied in when `fromGolden` (no overlay otherwise: the next boot makes one on the base).
   * Resolves with whether the job's overlay is kept (now, or by an earlier attempt).
   */
  renew(domain: string, keepFor: string, fromGolden: boolean): Promise<boolean>;
}
