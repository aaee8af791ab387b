/** Config of the image layer: the catalogue, the cache, context disks, domains naming images. */
import { compileConfig, parseConfigText } from '../../src/config/load-config';
import { ConfigError } from '../../src/errors';

const SHA = 'ab'.repeat(32);
const compile = (yaml: string) => compileConfig(parseConfigText(yaml, 'test.yaml'), '/etc/magrathea', {}, 'host1');

function problems(yaml: string): string[] {
  try {
    compile(yaml);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const qemuDomain = (extra = ''): string => `driver: { kind: qemu, qemu: { cgroup: false } }
domains:
  - name: meta
    image: sl7
    preemption: pause
    vm: { kernel: /boot/vmlinux${extra} }
`;

describe('images', () => {
  test('a catalogue, the cache and a domain using an image', () => {
    const c = compile(`stateDir: /var/lib/magrathea
images:
  - { name: sl7, url: 'http://repo.example/sl7.qcow2', sha256: ${SHA.toUpperCase()} }
  - { name: deb, url: images/deb.raw, sha256: ${SHA}, format: raw }
imageCache: { maxMiB: 2048 }
context: { pkiDir: pki, sshKeys: ['ssh-ed25519 AAAAC3Nza admin@site'] }
${qemuDomain()}    hostName: meta1.example
    network: { bridge: br0 }
`);
    expect(c.images.catalogue).toEqual([
      { name: 'sl7', url: 'http://repo.example/sl7.qcow2', sha256: SHA, format: 'qcow2' },
      { name: 'deb', url: '/etc/magrathea/images/deb.raw', sha256: SHA, format: 'raw' },
    ]);
    expect(c.images.cache).toEqual({
      dir: '/var/lib/magrathea/images',
      maxBytes: 2048 * 1024 * 1024,
      idleTimeoutMs: 30000,
    });
    expect(c.context).toEqual(
      expect.objectContaining({
        pkiDir: '/etc/magrathea/pki',
        certDays: 30,
        sshKeys: ['ssh-ed25519 AAAAC3Nza admin@site'],
      }),
    );
    expect(c.domains[0]).toEqual(
      expect.objectContaining({ image: 'sl7', hostName: 'meta1.example', network: { bridge: 'br0' } }),
    );
  });

  test('bad entries are each reported with their path', () => {
    expect(
      problems(`images:
  - { name: sl7, url: 'ftp://repo/x', sha256: ${SHA} }
  - { name: 'bad name', url: 'http://[::1', sha256: abc, format: vmdk }
  - { url: /x }
  - { name: sl7, url: /y, sha256: ${SHA}, size: 3 }
  - { name: sl7, url: /y, sha256: ${SHA} }
  - { name: num, url: /y, sha256: ${'1'.repeat(64)} }
imageCache: { maxMiB: 0, dir: '' }
${qemuDomain()}`),
    ).toEqual([
      'images.0.url: "ftp://repo/x": only http, https and file URLs are supported',
      'images.1.name: "bad name" is not an image name (letters, digits, ._-, at most 63)',
      'images.1.url: "http://[::1" is not a URL (http://, https://, file://) or an absolute path',
      'images.1.sha256: "abc" is not a SHA-256 digest (64 hex digits)',
      'images.1.format: "vmdk" is not one of qcow2, raw',
      'images.2.name: is required',
      'images.2.sha256: is required (the SHA-256 of the image file, 64 hex digits)',
      'images.3.size: unknown key (allowed: name, url, sha256, format)',
      'images.4.name: duplicate image name "sl7"',
      'images.5.sha256: YAML read the digest as a number: write it in quotes',
      'imageCache.dir: must be a non-empty string',
      'imageCache.maxMiB: must be an integer from 1 to 1073741824, got 0',
    ]);
  });

  test('a qemu domain naming an image that is not in the catalogue, or an image and vm.disk', () => {
    expect(problems(`images: [{ name: deb, url: /x, sha256: ${SHA} }]\n${qemuDomain()}`)).toEqual([
      'domains.0.image: "sl7" is not in images (known: deb)',
    ]);
    expect(problems(`images: [{ name: sl7, url: /x, sha256: ${SHA} }]\n${qemuDomain(', disk: /d.qcow2')}`)).toEqual([
      'domains.0.vm.disk: conflicts with image "sl7" (its disk is an overlay on the image)',
    ]);
  });

  test('a libvirt domain naming an image: checked against the catalogue as for qemu; without a catalogue it is a published name', () => {
    const lv = 'driver: { kind: libvirt }\ndomains:\n  - { name: meta, image: sl7 }\n';
    expect(problems(`images: [{ name: deb, url: /x, sha256: ${SHA} }]\n${lv}`)).toEqual([
      'domains.0.image: "sl7" is not in images (known: deb)',
    ]);
    expect(compile(`images: [{ name: sl7, url: /x, sha256: ${SHA} }]\n${lv}`).domains[0]?.image).toBe('sl7');
    expect(compile(lv).domains[0]?.image).toBe('sl7');
  });

  test('images must be a list; network needs a bridge; ssh keys must look like keys', () => {
    expect(
      problems(`images: { sl7: x }
context: { sshKeys: ['not a key'] }
${qemuDomain()}    network: { bridge: 'a very long bridge name' }
  - { name: egee, network: {}, preemption: pause, vm: { kernel: /k } }
`),
    ).toEqual([
      'images: must be a list of {name, url, sha256, format}',
      'context.sshKeys: must be a list of SSH public keys ("ssh-ed25519 AAAA... comment")',
      'domains.0.network.bridge: "a very long bridge name" is not a bridge name (at most 15 characters)',
      'domains.1.network.bridge: is required (the host bridge, e.g. br0)',
    ]);
  });
});
