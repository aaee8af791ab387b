/** A Domain message as a node daemon sends it (every field set), for tests of the filter's view. */
import type { DomainMessage } from '@magrathea/common';
import { domainMsg } from '../../../test/helpers/messages';

export function domainMessage(
  name: string,
  state: string,
  gen: number,
  cls = 'normal',
  extra: Record<string, unknown> = {},
): DomainMessage {
  return { ...domainMsg(name, state, gen, { domain_class: cls }), ...extra } as unknown as DomainMessage;
}
