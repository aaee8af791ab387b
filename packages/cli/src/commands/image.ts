/** `magrathea image list|pull|rm`: the image cache of one node (magrathead). */
import type { Command } from 'commander';
import type {
  CachedImageMessage,
  ListImagesResponseMessage,
  PullImageResponseMessage,
  RemoveImageResponseMessage,
} from '@magrathea/common';
import type { Endpoint } from '../client';
import { call } from '../client';
import type { Io } from '../output';
import { bytes, table } from '../output';
import type { CliContext } from '../program';
import { nodeOption, withClient } from './node';

export interface ImageCommandDeps {
  readonly io: Io;
  readonly ctx: CliContext;
}

function imageJson(i: CachedImageMessage): Record<string, unknown> {
  return { ...i, bytes: Number(i.bytes), last_used_ms: Number(i.last_used_ms) };
}

export function imageTable(r: ListImagesResponseMessage): string {
  const rows = [['IMAGE', 'FORMAT', 'STATE', 'SIZE', 'USERS', 'SHA256', 'URL']];
  for (const i of r.images)
    rows.push([i.name, i.format, i.state, bytes(Number(i.bytes)), String(i.users), i.sha256.slice(0, 12), i.url]);
  const foot = `cache: ${bytes(Number(r.used_bytes))} of ${bytes(Number(r.max_bytes))}`;
  return r.images.length === 0
    ? `no images in the catalogue (images: in the config)\n${foot}`
    : `${table(rows)}\n${foot}`;
}

export function addImageCommands(program: Command, deps: ImageCommandDeps): void {
  const { io, ctx } = deps;
  const node = (flag: string | undefined): Endpoint => ctx.endpoint(ctx.nodeAddress(flag), 'magrathead');
  const image = program.command('image').description("a node's image catalogue and cache");
  image
    .command('list')
    .description('the catalogue and what the cache holds: state, size, domains using each image')
    .addOption(nodeOption())
    .option('--json', 'print one JSON object')
    .action(async (o: { node?: string; json?: boolean }) => {
      const ep = node(o.node);
      const r = await withClient(ep, (c) =>
        call<ListImagesResponseMessage>(ep, (opts, cb) => c.ListImages({}, opts, cb)),
      );
      io.out(
        o.json
          ? JSON.stringify({
              images: r.images.map(imageJson),
              used_bytes: Number(r.used_bytes),
              max_bytes: Number(r.max_bytes),
            })
          : imageTable(r),
      );
    });
  image
    .command('pull <image>')
    .description('download a catalogue image into the cache now (resumes a partial download)')
    .addOption(nodeOption())
    .option('--json', 'print the result as JSON')
    .action(async (name: string, o: { node?: string; json?: boolean }) => {
      const ep = node(o.node);
      const r = await withClient(ep, (c) =>
        call<PullImageResponseMessage>(ep, (opts, cb) => c.PullImage({ name }, opts, cb)),
      );
      const got = Number(r.downloaded_bytes);
      const from = Number(r.resumed_from);
      io.out(
        o.json
          ? JSON.stringify({ image: r.image ? imageJson(r.image) : null, downloaded_bytes: got, resumed_from: from })
          : got === 0
            ? `${name}: cached`
            : `${name}: downloaded ${bytes(got)}${from > 0 ? ` (resumed at ${bytes(from)})` : ''}, verified`,
      );
    });
  image
    .command('rm <image>')
    .description('remove an image from the cache (refused while a domain uses it)')
    .addOption(nodeOption())
    .option('--json', 'print the result as JSON')
    .action(async (name: string, o: { node?: string; json?: boolean }) => {
      const ep = node(o.node);
      const r = await withClient(ep, (c) =>
        call<RemoveImageResponseMessage>(ep, (opts, cb) => c.RemoveImage({ name }, opts, cb)),
      );
      io.out(
        o.json
          ? JSON.stringify({ image: name, removed: r.removed })
          : r.removed
            ? `${name}: removed`
            : `${name}: not in the cache`,
      );
    });
}
