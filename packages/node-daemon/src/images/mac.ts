/** Stable MAC addresses for domain NICs (pure). */
import { createHash } from 'node:crypto';

/**
 * A unicast, locally administered MAC derived from the node and domain names: the same domain
 * on the same node gets the same address after every reboot and restore, so its mom keeps its
 * DHCP lease and address.
 */
export function stableMac(node: string, domain: string): string {
  const h = createHash('sha256').update(`magrathea-mac\0${node}\0${domain}`).digest();
  const b = [...h.subarray(0, 6)];
  b[0] = ((b[0] ?? 0) & 0xfc) | 0x02; // unicast (bit 0 clear), locally administered (bit 1 set)
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}
