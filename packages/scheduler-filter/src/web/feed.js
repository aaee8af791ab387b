// @ts-check
/**
 * The page's connection to the filter: server-sent events from /api/events. A snapshot on every
 * (re)connection, then deltas; a ping every few seconds when nothing changes. A connection that
 * errors, or stays silent for three pings, is dropped and opened again with back-off (1 s doubling
 * to 15 s), and the page is told at once so it can say its data is getting old.
 */

/**
 * @typedef {import('./model.js').FeedMessage} FeedMessage
 * @typedef {{ live: true } | { live: false, attempt: number, retryInMs: number, reason: string }} FeedStatus
 * @typedef {{
 *   onSnapshot(m: FeedMessage): void,
 *   onDelta(m: FeedMessage): void,
 *   onStatus(s: FeedStatus): void,
 * }} FeedHandlers
 */

/**
 * @param {Event} ev an event of the feed
 * @returns {FeedMessage}
 */
function parse(ev) {
  const data = /** @type {unknown} */ (JSON.parse(/** @type {MessageEvent<string>} */ (ev).data));
  return /** @type {FeedMessage} */ (data);
}

/**
 * @param {string} url
 * @param {FeedHandlers} h
 * @returns {{ close(): void }}
 */
export function connectFeed(url, h) {
  /** @type {EventSource | null} */
  let es = null;
  let attempt = 0;
  let heartbeatMs = 5000;
  let lastHeardMs = Date.now();
  /** @type {ReturnType<typeof setTimeout> | null} */
  let retry = null;
  let closed = false;

  const heard = () => {
    lastHeardMs = Date.now();
  };

  const lost = (/** @type {string} */ reason) => {
    if (closed || retry) return;
    es?.close();
    es = null;
    attempt++;
    const retryInMs = Math.min(15_000, 1000 * 2 ** Math.min(attempt - 1, 4));
    h.onStatus({ live: false, attempt, retryInMs, reason });
    retry = setTimeout(() => {
      retry = null;
      open();
    }, retryInMs);
  };

  const open = () => {
    if (closed) return;
    const source = new EventSource(url);
    es = source;
    heard();
    source.addEventListener('snapshot', (ev) => {
      heard();
      const m = parse(ev);
      heartbeatMs = m.heartbeatMs ?? heartbeatMs;
      attempt = 0;
      h.onStatus({ live: true });
      h.onSnapshot(m);
    });
    source.addEventListener('delta', (ev) => {
      heard();
      h.onDelta(parse(ev));
    });
    source.addEventListener('ping', heard);
    source.onerror = () => {
      if (source !== es) return;
      // EventSource would retry by itself, but not after a refusal, and says nothing meanwhile.
      lost('the connection to the filter was lost');
    };
  };

  const watchdog = setInterval(() => {
    if (es && Date.now() - lastHeardMs > 3 * heartbeatMs)
      lost(`no word from the filter for ${Math.round((Date.now() - lastHeardMs) / 1000)} s`);
  }, 1000);

  open();
  return {
    close() {
      closed = true;
      clearInterval(watchdog);
      if (retry) clearTimeout(retry);
      es?.close();
    },
  };
}
