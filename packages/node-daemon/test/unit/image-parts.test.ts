/** Pure parts of the image layer: stable MACs and QEMU's disk arguments. */
import fc from 'fast-check';
import { stableMac } from '../../src/images/mac';
import { diskArgs } from '../../src/hypervisor/qemu/disk-args';

const name = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/);

describe('stableMac', () => {
  test('always a unicast, locally administered MAC, the same for the same node and domain', () => {
    fc.assert(
      fc.property(name, name, (node, domain) => {
        const mac = stableMac(node, domain);
        expect(mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
        const first = parseInt(mac.slice(0, 2), 16);
        expect(first & 0x01).toBe(0);
        expect(first & 0x02).toBe(0x02);
        expect(stableMac(node, domain)).toBe(mac);
      }),
    );
  });

  test('different node or domain, different MAC (no collisions among many names)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(name, name), { minLength: 2, maxLength: 200, selector: (t) => t.join('\0') }),
        (pairs) => {
          expect(new Set(pairs.map(([n, d]) => stableMac(n, d))).size).toBe(pairs.length);
        },
      ),
    );
    // The separator matters: ("a", "bc") and ("ab", "c") differ.
    expect(stableMac('a', 'bc')).not.toBe(stableMac('ab', 'c'));
  });
});

describe('diskArgs', () => {
  test('the overlay read-write, the context disk read-only, the NIC with its MAC; commas doubled', () => {
    expect(
      diskArgs(
        [
          { file: '/var/lib/m/disks/a,b/root.qcow2', format: 'qcow2', readOnly: false, role: 'root' },
          { file: '/var/lib/m/disks/a/context.iso', format: 'raw', readOnly: true, role: 'context' },
        ],
        { bridge: 'br0', mac: '02:11:22:33:44:55' },
      ),
    ).toEqual([
      '-drive',
      'file=/var/lib/m/disks/a,,b/root.qcow2,if=virtio,format=qcow2,discard=unmap',
      '-drive',
      'file=/var/lib/m/disks/a/context.iso,if=virtio,format=raw,readonly=on',
      '-netdev',
      'bridge,id=net0,br=br0',
      '-device',
      'virtio-net-pci,netdev=net0,mac=02:11:22:33:44:55',
    ]);
    expect(diskArgs([], null)).toEqual([]);
  });
});
