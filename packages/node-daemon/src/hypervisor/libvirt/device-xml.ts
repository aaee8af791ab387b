/**
 * The devices of an image-backed libvirt domain (pure): the disk and NIC elements the daemon
 * writes into the domain's persistent definition before each boot (`virsh attach-device` or
 * `update-device --config`), and readers of `virsh domblklist` / `domiflist` tables.
 *
 * The daemon owns two disk targets and one NIC: the root overlay at `vda`, the context disk at
 * `vdb` (both virtio, as the qemu driver attaches them: the guest sees the same devices with
 * either driver), and the interface with the domain's stable MAC. Every other device of the
 * admin's definition is left alone.
 */
import type { VmDisk, VmNic } from '../vm-disks';

/** The disk target of each role. */
export const DISK_TARGETS: Readonly<Record<VmDisk['role'], string>> = { root: 'vda', context: 'vdb' };

/** Escapes text for an XML attribute value. */
export function xmlAttr(v: string): string {
  // XML 1.0 has no way to carry these at all: refuse rather than write a broken definition.
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(v)) throw new Error(`control character in ${JSON.stringify(v)}`);
  return v
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

export function diskXml(d: VmDisk): string {
  const driver = d.readOnly
    ? `<driver name="qemu" type="${d.format}"/>`
    : `<driver name="qemu" type="${d.format}" discard="unmap"/>`;
  return [
    '<disk type="file" device="disk">',
    `  ${driver}`,
    `  <source file="${xmlAttr(d.file)}"/>`,
    `  <target dev="${DISK_TARGETS[d.role]}" bus="virtio"/>`,
    ...(d.readOnly ? ['  <readonly/>'] : []),
    '</disk>',
    '',
  ].join('\n');
}

export function interfaceXml(n: VmNic): string {
  return [
    '<interface type="bridge">',
    `  <mac address="${xmlAttr(n.mac)}"/>`,
    `  <source bridge="${xmlAttr(n.bridge)}"/>`,
    '  <model type="virtio"/>',
    '</interface>',
    '',
  ].join('\n');
}

/** The rows of a virsh table, split on runs of spaces: with its header and rule (virsh) or without (virsh -q, the session). */
function rows(table: string): string[][] {
  const lines = table.split('\n').map((l) => l.trim());
  const rule = lines.findIndex((l) => /^-{3,}$/.test(l));
  return lines
    .slice(rule + 1)
    .filter((l) => l !== '')
    .map((l) => l.split(/\s+/));
}

/** The disk targets in `virsh domblklist --details` output (Type Device Target Source). */
export function blockTargets(table: string): string[] {
  return rows(table).map((r) => {
    if (r.length < 3 || !r[2]) throw new Error(`unexpected domblklist row: ${r.join(' ')}`);
    return r[2];
  });
}

/** The MAC addresses (lower case) in `virsh domiflist` output (Interface Type Source Model MAC). */
export function interfaceMacs(table: string): string[] {
  return rows(table).map((r) => {
    const mac = r.at(-1) ?? '';
    if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac)) throw new Error(`unexpected domiflist row: ${r.join(' ')}`);
    return mac.toLowerCase();
  });
}
