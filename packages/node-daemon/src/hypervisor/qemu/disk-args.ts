/** QEMU arguments for the disks and NIC the image layer prepared (pure). */
import type { VmDisk, VmNic } from '../vm-disks';

/** QEMU option values separate with commas; a comma inside a value is doubled. */
const esc = (v: string): string => v.replace(/,/g, ',,');

export function diskArgs(disks: readonly VmDisk[], nic: VmNic | null): string[] {
  const args: string[] = [];
  for (const d of disks)
    args.push(
      '-drive',
      `file=${esc(d.file)},if=virtio,format=${d.format}${d.readOnly ? ',readonly=on' : ',discard=unmap'}`,
    );
  if (nic)
    args.push(
      '-netdev',
      `bridge,id=net0,br=${esc(nic.bridge)}`,
      '-device',
      `virtio-net-pci,netdev=net0,mac=${nic.mac}`,
    );
  return args;
}
