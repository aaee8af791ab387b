#!/usr/bin/env node
/**
 * magrathea-filter's command helper: started once by the filter (an IPC child), it runs the
 * PBS commands the filter asks for, so the big filter process never forks. The only file of
 * the helper that touches `process`.
 */
import { serveCommands } from './serve';

if (!process.send) {
  process.stderr.write('magrathea-filter command helper: started without an IPC channel (the filter starts it)\n');
  process.exit(64);
}
const send = process.send.bind(process);
const { closed } = serveCommands({
  onMessage: (f) => process.on('message', f),
  onClose: (f) => process.on('disconnect', f),
  // The filter may be gone already (killed): an answer it can no longer get is dropped.
  send: (m) => {
    if (process.connected) send(m, undefined, undefined, () => undefined);
  },
  reject: (m) =>
    process.stderr.write(`magrathea-filter command helper: not a request: ${JSON.stringify(m)?.slice(0, 200)}\n`),
});
void closed.then(() => process.exit(0));
