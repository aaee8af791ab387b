/** The disk and NIC elements the libvirt driver writes into a definition, and the virsh tables it reads. */
import fc from 'fast-check';
import { blockTargets, diskXml, interfaceMacs, interfaceXml, xmlAttr } from '../../src/hypervisor/libvirt/device-xml';

const unescape = (v: string): string =>
  v
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');

describe('libvirt device XML', () => {
  test('an attribute value never carries markup and reads back as written', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme' }).filter((s) => !/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(s)),
        (v) => {
          const e = xmlAttr(v);
          expect(e).not.toMatch(/[<>"']/);
          expect(e.replace(/&(amp|lt|gt|quot|apos);/g, '')).not.toContain('&');
          expect(unescape(e)).toBe(v);
        },
      ),
    );
  });

  test('a control character XML cannot carry is refused, not written', () => {
    expect(() => xmlAttr('/img/a\u0001b')).toThrow(/control character/);
  });

  test('the root overlay at vda (writable, discard), the context disk at vdb (read-only)', () => {
    const root = diskXml({ file: "/var/lib/m g/d'1/root.qcow2", format: 'qcow2', readOnly: false, role: 'root' });
    expect(root).toContain('<driver name="qemu" type="qcow2" discard="unmap"/>');
    expect(root).toContain('<source file="/var/lib/m g/d&apos;1/root.qcow2"/>');
    expect(root).toContain('<target dev="vda" bus="virtio"/>');
    expect(root).not.toContain('<readonly/>');
    const ctx = diskXml({ file: '/d/context.iso', format: 'raw', readOnly: true, role: 'context' });
    expect(ctx).toContain('<target dev="vdb" bus="virtio"/>');
    expect(ctx).toContain('<readonly/>');
  });

  test('the NIC on its bridge with the stable MAC, virtio', () => {
    const x = interfaceXml({ bridge: 'br0', mac: '52:54:00:aa:bb:cc' });
    expect(x).toContain('<mac address="52:54:00:aa:bb:cc"/>');
    expect(x).toContain('<source bridge="br0"/>');
    expect(x).toContain('<model type="virtio"/>');
  });
});

describe('virsh tables', () => {
  const withHeader = ` Type   Device   Target   Source
------------------------------------------------
 file   disk     vda      /var/lib/a b/root.qcow2
 file   cdrom    sda      -
`;
  test('disk targets with the header and rule (virsh) and without (the session)', () => {
    expect(blockTargets(withHeader)).toEqual(['vda', 'sda']);
    expect(blockTargets(' file   disk   vda   /x/root.qcow2\n file   disk   vdb   /x/context.iso')).toEqual([
      'vda',
      'vdb',
    ]);
    expect(blockTargets('')).toEqual([]);
    expect(blockTargets(' Type Device Target Source\n-----------\n\n')).toEqual([]);
  });

  test('interface MACs, lower case; a row that is no interface is an error, not a guess', () => {
    expect(
      interfaceMacs(
        ' Interface   Type     Source   Model    MAC\n-------------------------------------\n -   bridge   br0   virtio   52:54:00:AA:bb:01\n',
      ),
    ).toEqual(['52:54:00:aa:bb:01']);
    expect(interfaceMacs('')).toEqual([]);
    expect(() => interfaceMacs(' vnet0 bridge br0 virtio')).toThrow(/unexpected domiflist row/);
    expect(() => blockTargets(' file disk')).toThrow(/unexpected domblklist row/);
  });
});
