/**
 * The disks of image-based domains (qemu and libvirt drivers):
 *
 *  - root: a qcow2 overlay (`qemu-img create -f qcow2 -F FORMAT -b BASE`) on the cached base,
 *    so the base is shared and never written. The overlay lives across reboots; discard()
 *    removes it, and the next boot starts from the clean image. An overlay whose backing file is
 *    not the domain's current image (the config or set-image changed it) is replaced.
 *  - context: an ISO 9660 disk labelled `cidata` (cloud-init NoCloud, also read by
 *    OpenNebula-style context scripts) rebuilt at every boot: meta-data (instance id, host name),
 *    user-data (#cloud-config: host name, SSH keys, the start script), network-config (v2, the
 *    NIC matched by its stable MAC), and magrathea/ with the node and domain names, the hook API
 *    address, this domain's own token, the site CA and a host certificate and key issued for the
 *    domain by the `pki` CA. Rock Ridge keeps the modes: secrets are 0400 root:root in the guest.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { DiskUse, VmDisk, VmDisks, VmNic } from '../hypervisor/vm-disks';
import { DriverError } from '../errors';
import type { ImageCache, ImageLease } from './image-cache';
import type { ContextConfig, DomainNetwork } from './image-config';
import { stableMac } from './mac';
import type { ImageSwitch } from '../engine/domain-manager';

export interface DiskDomain {
  /** Catalogue image the domain runs ('' or not in the catalogue: no disks from here). */
  image: string;
  readonly hostName: string;
  readonly tokenFile: string | null;
  readonly network: DomainNetwork | null;
}

export interface DomainDisksOptions {
  /** The driver the disks are for (qemu or libvirt), named in errors. */
  readonly driver: string;
  readonly cache: ImageCache;
  /** Directory for the overlays and context disks (one subdirectory per domain). */
  readonly dir: string;
  readonly nodeName: string;
  readonly domains: Readonly<Record<string, DiskDomain>>;
  readonly context: ContextConfig | null;
  /** HOST:PORT of the hook API as the guest should use it, or null. */
  readonly hookApiAddress: string | null;
  readonly qemuImg: string;
  readonly genisoimage: string;
  readonly openssl: string;
}

function run(cmd: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const why =
        (err as NodeJS.ErrnoException).code === 'ENOENT' ? `${cmd} is not installed` : stderr.trim() || err.message;
      reject(new Error(`${path.basename(cmd)} ${args[0] ?? ''}: ${why}`));
    }),
  );
}

export class DomainDisks implements VmDisks, ImageSwitch {
  private readonly leases = new Map<string, ImageLease>();
  private opened: Promise<void> | null = null;

  constructor(private readonly opts: DomainDisksOptions) {}

  has(domain: string): boolean {
    const d = this.opts.domains[domain];
    return d !== undefined && d.image !== '' && this.opts.cache.names().includes(d.image);
  }

  /** Opens the cache once (a failed open is tried again next time). */
  private async openCache(): Promise<void> {
    this.opened ??= this.opts.cache.open();
    try {
      await this.opened;
    } catch (err) {
      this.opened = null;
      throw err;
    }
  }

  /** set-image can act on the domain: it runs a catalogue image. */
  backed(domain: string): boolean {
    return this.has(domain);
  }

  known(image: string): boolean {
    return this.opts.cache.names().includes(image);
  }

  /** Downloads the image into the cache unless it is there (an ImageError on a bad digest, URL, disk). */
  async pull(image: string): Promise<void> {
    await this.openCache();
    await this.opts.cache.pull(image);
  }

  /** The domain's disks are on this image (the engine's record); the next boot's overlay is made on its base. */
  adopt(domain: string, image: string): void {
    const d = this.opts.domains[domain];
    if (d && this.known(image)) d.image = image;
  }

  switchTo(domain: string, image: string): Promise<void> {
    return this.setImage(domain, image);
  }

  /** The image a domain runs now. */
  imageOf(domain: string): string {
    return this.opts.domains[domain]?.image ?? '';
  }

  private domainDir(domain: string): string {
    return path.join(this.opts.dir, domain);
  }

  /** The overlay file of a domain. */
  overlayOf(domain: string): string {
    return path.join(this.domainDir(domain), 'root.qcow2');
  }

  contextOf(domain: string): string {
    return path.join(this.domainDir(domain), 'context.iso');
  }

  macOf(domain: string): string {
    return stableMac(this.opts.nodeName, domain);
  }

  async prepare(domain: string, use: DiskUse): Promise<{ disks: readonly VmDisk[]; nic: VmNic | null }> {
    const d = this.opts.domains[domain];
    if (!d || !this.has(domain))
      throw new DriverError(this.opts.driver, 'boot', domain, 'the domain has no catalogue image');
    await this.openCache();
    let lease = this.leases.get(domain);
    if (lease && lease.name !== d.image) {
      lease.release();
      this.leases.delete(domain);
      lease = undefined;
    }
    if (!lease) {
      lease = await this.opts.cache.acquire(d.image);
      this.leases.set(domain, lease);
    }
    try {
      await fsp.mkdir(this.domainDir(domain), { recursive: true, mode: 0o700 });
      if (use !== 'adopt') await this.ensureOverlay(domain, lease);
      if (use === 'boot' || !fs.existsSync(this.contextOf(domain))) await this.buildContext(domain, d);
    } catch (err) {
      if (use === 'boot') this.release(domain);
      throw err;
    }
    const nic = d.network ? { bridge: d.network.bridge, mac: this.macOf(domain) } : null;
    return {
      disks: [
        { file: this.overlayOf(domain), format: 'qcow2', readOnly: false, role: 'root' },
        { file: this.contextOf(domain), format: 'raw', readOnly: true, role: 'context' },
      ],
      nic,
    };
  }

  release(domain: string): void {
    this.leases.get(domain)?.release();
    this.leases.delete(domain);
  }

  /** Removes the domain's overlay: the next boot starts from the clean image. Only while it is not running. */
  async discard(domain: string): Promise<void> {
    await fsp.rm(this.overlayOf(domain), { force: true });
  }

  /** Switches the domain to another catalogue image (its overlay is discarded; the next boot uses the new base). */
  async setImage(domain: string, image: string): Promise<void> {
    const d = this.opts.domains[domain];
    if (!d) throw new DriverError(this.opts.driver, 'set-image', domain, 'no such domain');
    this.opts.cache.spec(image); // unknown image: ImageError, nothing changed
    await this.discard(domain);
    this.release(domain);
    d.image = image;
  }

  private async ensureOverlay(domain: string, lease: ImageLease): Promise<void> {
    const overlay = this.overlayOf(domain);
    if (fs.existsSync(overlay)) {
      const info = JSON.parse(await run(this.opts.qemuImg, ['info', '-U', '--output=json', overlay])) as {
        'backing-filename'?: string;
      };
      if (info['backing-filename'] === lease.file) return;
      await fsp.rm(overlay, { force: true });
    }
    const tmp = `${overlay}.tmp`;
    await fsp.rm(tmp, { force: true });
    await run(this.opts.qemuImg, ['create', '-q', '-f', 'qcow2', '-F', lease.format, '-b', lease.file, tmp]);
    await fsp.rename(tmp, overlay);
  }

  /** Writes the context tree and packs it into context.iso (through a temporary file and a rename). */
  private async buildContext(domain: string, d: DiskDomain): Promise<void> {
    const dir = this.domainDir(domain);
    const tree = path.join(dir, 'context.d');
    await fsp.rm(tree, { recursive: true, force: true });
    const mg = path.join(tree, 'magrathea');
    await fsp.mkdir(mg, { recursive: true, mode: 0o755 });
    const ctx = this.opts.context;
    const write = (rel: string, text: string | Buffer, mode = 0o444): Promise<void> =>
      fsp.writeFile(path.join(tree, rel), text, { mode }).then(() => fsp.chmod(path.join(tree, rel), mode));
    const mac = this.macOf(domain);
    await write('meta-data', `instance-id: ${this.opts.nodeName}-${domain}\nlocal-hostname: ${d.hostName}\n`);
    const user = ['#cloud-config', `hostname: ${d.hostName}`, `fqdn: ${d.hostName}`];
    if (ctx && ctx.sshKeys.length > 0)
      user.push('ssh_authorized_keys:', ...ctx.sshKeys.map((k) => `  - ${JSON.stringify(k)}`));
    if (ctx?.startScript) user.push('runcmd:', '  - [sh, /run/magrathea-context/magrathea/start.sh]');
    await write('user-data', `${user.join('\n')}\n`);
    if (d.network)
      await write(
        'network-config',
        `version: 2\nethernets:\n  nic0:\n    match:\n      macaddress: "${mac}"\n    set-name: eth0\n    dhcp4: true\n`,
      );
    await write('magrathea/node', `${this.opts.nodeName}\n`);
    await write('magrathea/domain', `${domain}\n`);
    await write('magrathea/hostname', `${d.hostName}\n`);
    await write('magrathea/mac', `${mac}\n`);
    if (this.opts.hookApiAddress) await write('magrathea/hook-api', `http://${this.opts.hookApiAddress}\n`);
    if (d.tokenFile) await write('magrathea/token', (await fsp.readFile(d.tokenFile, 'utf8')).trim(), 0o400);
    if (ctx?.sshKeys.length) await write('magrathea/authorized_keys', `${ctx.sshKeys.join('\n')}\n`);
    if (ctx?.startScript) await write('magrathea/start.sh', await fsp.readFile(ctx.startScript), 0o500);
    if (ctx?.pkiDir) await this.issueHostCert(ctx, d.hostName, mg);
    const iso = this.contextOf(domain);
    const tmp = `${iso}.tmp`;
    await run(this.opts.genisoimage, [
      '-quiet',
      '-output',
      tmp,
      '-volid',
      'cidata',
      '-joliet',
      '-rock',
      '-uid',
      '0',
      '-gid',
      '0',
      tree,
    ]);
    await fsp.rename(tmp, iso);
    // The tree holds the token and the host key: only the ISO is kept.
    await fsp.rm(tree, { recursive: true, force: true });
  }

  /** A key and a certificate for the domain's host name, signed by the site CA (`magrathea pki init`). */
  private async issueHostCert(ctx: ContextConfig, hostName: string, out: string): Promise<void> {
    const caCert = path.join(ctx.pkiDir ?? '', 'ca.pem');
    const caKey = path.join(ctx.pkiDir ?? '', 'ca.key');
    const key = path.join(out, 'host.key');
    const csr = path.join(out, 'host.csr');
    const cert = path.join(out, 'host.pem');
    const ext = path.join(out, 'host.ext');
    await fsp.copyFile(caCert, path.join(out, 'ca.pem'));
    await fsp.chmod(path.join(out, 'ca.pem'), 0o444);
    await run(this.opts.openssl, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
    await run(this.opts.openssl, ['req', '-new', '-key', key, '-subj', `/CN=${hostName}`, '-out', csr]);
    await fsp.writeFile(
      ext,
      `subjectAltName=DNS:${hostName}\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n`,
    );
    await run(this.opts.openssl, [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      caCert,
      '-CAkey',
      caKey,
      // A random serial: no serial file to keep, and no two certificates share one.
      '-set_serial',
      `0x${randomBytes(16).toString('hex')}`,
      '-days',
      String(ctx.certDays),
      '-sha256',
      '-extfile',
      ext,
      '-out',
      cert,
    ]);
    await Promise.all([fsp.rm(csr), fsp.rm(ext)]);
    await fsp.chmod(key, 0o400);
    await fsp.chmod(cert, 0o444);
  }
}
