// @ts-check
'use strict';
/**
 * A progress bar with rate and ETA on a terminal; a line every 10 % otherwise (CI logs).
 * @param {string} label
 * @param {NodeJS.WriteStream} [stream]
 */
function progressBar(label, stream = process.stderr) {
  const t0 = Date.now();
  let lastDecile = -1;
  const fmtTime = (/** @type {number} */ s) =>
    Number.isFinite(s) ? `${Math.floor(s / 60)}:${String(Math.round(s % 60)).padStart(2, '0')}` : '?';
  return {
    /**
     * @param {number} done
     * @param {number} total
     * @param {number} perSecond
     */
    update(done, total, perSecond) {
      const f = total > 0 ? done / total : 1;
      const elapsed = (Date.now() - t0) / 1000;
      const eta = f > 0 ? (elapsed / f) * (1 - f) : Infinity;
      const text = `${label} ${String(Math.round(f * 100)).padStart(3)}% ${done.toLocaleString('en')}/${total.toLocaleString('en')} jobs, ${Number.isFinite(perSecond) ? Math.round(perSecond).toLocaleString('en') : '—'} starts/s, ETA ${fmtTime(eta)}`;
      if (stream.isTTY) {
        const width = 24;
        const full = Math.round(f * width);
        stream.write(
          `\r[${'='.repeat(full)}${full < width ? '>' : ''}${' '.repeat(Math.max(0, width - full - 1))}] ${text}\x1b[K`,
        );
      } else if (Math.floor(f * 10) > lastDecile) {
        lastDecile = Math.floor(f * 10);
        stream.write(`${text}\n`);
      }
    },
    end() {
      if (stream.isTTY) stream.write('\n');
    },
  };
}
module.exports = { progressBar };
