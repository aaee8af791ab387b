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
}
