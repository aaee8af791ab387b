/** NodeService's image methods: list, pull and remove images of the node's cache. */
import type {
  CachedImageInput,
  ListImagesResponseInput,
  PullImageResponseInput,
  RemoveImageResponseInput,
} from '@magrathea/common';
import { DOMAIN_NAME } from '@magrathea/common';
import { InvalidArgumentError } from '../errors';
import type { ImageCache, ImageEntry } from '../images/image-cache';

function toMessage(e: ImageEntry): CachedImageInput {
  return {
    name: e.name,
    sha256: e.sha256,
    format: e.format,
    url: e.url,
    state: e.state,
    bytes: String(e.bytes),
    last_used_ms: String(Math.round(e.lastUsedMs)),
    users: e.users,
  };
}

function imageName(req: { name?: string }): string {
  const name = req.name ?? '';
  if (!DOMAIN_NAME.test(name)) throw new InvalidArgumentError(`name: "${name}" is not an image name`);
  return name;
}

/** The handlers' bodies (authorization and error mapping are the caller's). */
export function imageMethods(cache: ImageCache, maxBytes: number) {
  return {
    list(): Promise<ListImagesResponseInput> {
      return Promise.resolve({
        images: cache.list().map(toMessage),
        used_bytes: String(cache.usedBytes()),
        max_bytes: String(maxBytes),
      });
    },
    async pull(req: { name?: string }): Promise<PullImageResponseInput> {
      const name = imageName(req);
      cache.spec(name);
      await cache.open();
      const r = await cache.pull(name);
      const entry = cache.list().find((e) => e.name === name);
      return {
        downloaded_bytes: String(r.downloadedBytes),
        resumed_from: String(r.resumedFrom),
        image: entry ? toMessage(entry) : null,
      };
    },
    async remove(req: { name?: string }): Promise<RemoveImageResponseInput> {
      return { removed: await cache.remove(imageName(req)) };
    },
  };
}
