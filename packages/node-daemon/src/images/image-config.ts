/**
 * Config checks of the image layer: the catalogue (`images`), the node's cache (`imageCache`),
 * contextualization (`context`) and each domain's `hostName` and `network`.
 */
import * as path from 'node:path';
import type { ConfigChecker, ConfigObject as Obj } from '@magrathea/common';
import { DOMAIN_NAME } from '@magrathea/common';
import type { ImageSpec } from './image-cache';
import { IMAGE_FORMATS, ImageError, parseImageSource } from './image-cache';

export interface ImagesConfig {
  readonly catalogue: readonly ImageSpec[];
  readonly cache: {
    /** Cache directory. Default `<stateDir>/images`. */
    readonly dir: string;
    /** Size limit of the complete images, bytes. Default 10 GiB (`maxMiB: 10240`). */
    readonly maxBytes: number;
    /** A download receiving nothing this long fails (the next pull resumes it), ms. Default 30000. */
    readonly idleTimeoutMs: number;
  };
}

export interface ContextConfig {
  /** Directory of the site CA made by `magrathea pki init` (ca.pem, ca.key), or null: no host certificate. */
  readonly pkiDir: string | null;
  /** Validity of the host certificates issued to domains, days. Default 30. */
  readonly certDays: number;
  /** SSH public keys put into the guest (authorized_keys of root). */
  readonly sshKeys: readonly string[];
  /** Script the guest runs at start (absolute path on the host), or null. */
  readonly startScript: string | null;
  /** Address the guest reaches the hook API at (default: hookApi.listen). */
  readonly hookApiAddress: string | null;
}

export interface DomainNetwork {
  /** Host bridge the domain's NIC is attached to. */
  readonly bridge: string;
}

const SHA256_ANY_CASE = /^[0-9a-fA-F]{64}$/;
const BRIDGE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

/** `images` (the catalogue) and `imageCache`. */
export function checkImages(
  c: ConfigChecker,
  list: unknown,
  cacheV: unknown,
  stateDir: string,
  baseDir: string,
): ImagesConfig {
  const catalogue: ImageSpec[] = [];
  if (list !== undefined && list !== null && !Array.isArray(list))
    c.fail('images', 'must be a list of {name, url, sha256, format}');
  else if (Array.isArray(list))
    list.forEach((v, i) => {
      const at = `images.${i}`;
      const o = c.object(v, at, ['name', 'url', 'sha256', 'format']);
      if (!o) {
        if (v === null || v === undefined) c.fail(at, 'is empty');
        return;
      }
      const name = c.string(o, 'name', at, {
        pattern: DOMAIN_NAME,
        patternText: 'an image name (letters, digits, ._-, at most 63)',
      });
      if (o.name === undefined) c.fail(`${at}.name`, 'is required');
      let url = c.string(o, 'url', at);
      if (o.url === undefined) c.fail(`${at}.url`, 'is required (http://, https://, file:// or a path)');
      if (url !== undefined && !url.includes('://') && !path.isAbsolute(url)) url = path.resolve(baseDir, url);
      if (url !== undefined) {
        try {
          parseImageSource(url);
        } catch (err) {
          if (!(err instanceof ImageError)) throw err;
          c.fail(`${at}.url`, err.message);
          url = undefined;
        }
      }
      if (typeof o.sha256 === 'number') {
        c.fail(`${at}.sha256`, 'YAML read the digest as a number: write it in quotes');
        return;
      }
      const sha = c.string(o, 'sha256', at, {
        pattern: SHA256_ANY_CASE,
        patternText: 'a SHA-256 digest (64 hex digits)',
      });
      if (o.sha256 === undefined) c.fail(`${at}.sha256`, 'is required (the SHA-256 of the image file, 64 hex digits)');
      const format = c.oneOf(o, 'format', at, IMAGE_FORMATS) ?? 'qcow2';
      if (name && catalogue.some((x) => x.name === name)) c.fail(`${at}.name`, `duplicate image name "${name}"`);
      else if (name && url && sha && SHA256_ANY_CASE.test(sha))
        catalogue.push({ name, url, sha256: sha.toLowerCase(), format });
    });
  const o = c.object(cacheV, 'imageCache', ['dir', 'maxMiB', 'idleTimeoutMs']);
  const dirText = c.path(o, 'dir', 'imageCache');
  return {
    catalogue,
    cache: {
      dir: dirText ? path.resolve(baseDir, dirText) : path.join(stateDir, 'images'),
      maxBytes: (c.int(o, 'maxMiB', 'imageCache', 1, 1 << 30) ?? 10240) * 1024 * 1024,
      idleTimeoutMs: c.int(o, 'idleTimeoutMs', 'imageCache', 100, 3_600_000) ?? 30_000,
    },
  };
}

/** `context`: what goes on every domain's context disk beyond its own name, token and network. */
export function checkContext(c: ConfigChecker, v: unknown, baseDir: string): ContextConfig | null {
  const at = 'context';
  const o = c.object(v, at, ['pkiDir', 'certDays', 'sshKeys', 'startScript', 'hookApiAddress']);
  if (!o) return null;
  const pki = c.path(o, 'pkiDir', at);
  const script = c.path(o, 'startScript', at);
  let sshKeys: string[] = [];
  if (o.sshKeys !== undefined && o.sshKeys !== null) {
    if (!Array.isArray(o.sshKeys) || !o.sshKeys.every((k) => typeof k === 'string' && /^(ssh|ecdsa)-\S+ \S+/.test(k)))
      c.fail(`${at}.sshKeys`, 'must be a list of SSH public keys ("ssh-ed25519 AAAA... comment")');
    else sshKeys = o.sshKeys as string[];
  }
  return {
    pkiDir: pki ? path.resolve(baseDir, pki) : null,
    certDays: c.int(o, 'certDays', at, 1, 3650) ?? 30,
    sshKeys,
    startScript: script ? path.resolve(baseDir, script) : null,
    hookApiAddress: c.string(o, 'hookApiAddress', at) ?? null,
  };
}

/** A domain's `network` (a NIC on a host bridge), or null. */
export function checkNetwork(c: ConfigChecker, o: Obj, at: string): DomainNetwork | null {
  const n = c.object(o.network, `${at}.network`, ['bridge']);
  if (!n) return null;
  const bridge = c.string(n, 'bridge', `${at}.network`, {
    pattern: BRIDGE,
    patternText: 'a bridge name (at most 15 characters)',
  });
  if (n.bridge === undefined) c.fail(`${at}.network.bridge`, 'is required (the host bridge, e.g. br0)');
  return bridge ? { bridge } : null;
}

/** The drivers whose domains get their disks from the image layer (with a catalogue); elsewhere `image` is only a published name. */
export function hasImageLayer(kind: string): boolean {
  return kind === 'qemu' || kind === 'libvirt';
}

/** A domain naming an image: with a VM driver (qemu, libvirt) and a catalogue it must be in it, and it replaces vm.disk. */
export function checkImageUse(
  c: ConfigChecker,
  kind: string,
  d: { readonly image: string; readonly vm: { readonly disk: string | null } | null },
  i: number,
  images: ImagesConfig,
): void {
  if (d.image === '' || !hasImageLayer(kind) || images.catalogue.length === 0) return;
  if (!images.catalogue.some((s) => s.name === d.image)) {
    c.fail(
      `domains.${i}.image`,
      `"${d.image}" is not in images (known: ${images.catalogue.map((s) => s.name).join(', ')})`,
    );
    return;
  }
  if (d.vm?.disk)
    c.fail(`domains.${i}.vm.disk`, `conflicts with image "${d.image}" (its disk is an overlay on the image)`);
}
