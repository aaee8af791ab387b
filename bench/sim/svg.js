// @ts-check
'use strict';
/** Small SVG charts for docs/evaluation.md: empirical CDFs of wait times, log-scaled time axis. */
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];

/** @type {Record<string, string>} */
const ENTITIES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' };

/** @param {unknown} s */
function esc(s) {
  return String(s).replace(/[&<>"]/g, (c) => ENTITIES[c] ?? c);
}

/**
 * series: [{label, values (seconds, sorted ascending)}]. Returns SVG text: the share of jobs
 * (y) that waited at most x seconds (log scale, 1 s … the largest wait).
 * @param {{ title: string, series: readonly { label: string, values: readonly number[] }[], width?: number, height?: number }} o
 */
function cdfChart({ title, series, width = 640, height = 360 }) {
  const m = { l: 56, r: 16, t: 36, b: 48 };
  const w = width - m.l - m.r;
  const h = height - m.t - m.b;
  const maxV = Math.max(10, ...series.flatMap((s) => s.values.slice(-1)));
  const lmax = Math.log10(maxV + 1);
  const x = (/** @type {number} */ v) => m.l + (Math.log10(v + 1) / lmax) * w;
  const y = (/** @type {number} */ f) => m.t + (1 - f) * h;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
  ];
  // grid and axes
  for (let d = 0; d <= Math.ceil(lmax); d++) {
    const v = 10 ** d - 1;
    if (v > maxV * 1.01) break;
    const label =
      d === 0 ? '0' : 10 ** d >= 3600 ? `${(10 ** d / 3600).toFixed(10 ** d >= 36000 ? 0 : 1)} h` : `${10 ** d} s`;
    out.push(
      `<line x1="${x(v)}" y1="${m.t}" x2="${x(v)}" y2="${m.t + h}" stroke="#ddd"/>`,
      `<text x="${x(v)}" y="${m.t + h + 16}" text-anchor="middle">${label}</text>`,
    );
  }
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    out.push(
      `<line x1="${m.l}" y1="${y(f)}" x2="${m.l + w}" y2="${y(f)}" stroke="#ddd"/>`,
      `<text x="${m.l - 6}" y="${y(f) + 4}" text-anchor="end">${Math.round(f * 100)}%</text>`,
    );
  }
  out.push(
    `<text x="${m.l + w / 2}" y="${height - 10}" text-anchor="middle">wait time (log scale)</text>`,
    `<text x="14" y="${m.t + h / 2}" text-anchor="middle" transform="rotate(-90 14 ${m.t + h / 2})">jobs started within</text>`,
  );
  series.forEach((s, i) => {
    const n = s.values.length;
    if (n === 0) return;
    const pts = [];
    // at most ~400 points per line
    const step = Math.max(1, Math.floor(n / 400));
    const at = (/** @type {number} */ k) => /** @type {number} */ (s.values[k]);
    for (let k = 0; k < n; k += step) pts.push(`${x(at(k)).toFixed(1)},${y((k + 1) / n).toFixed(1)}`);
    pts.push(`${x(at(n - 1)).toFixed(1)},${y(1).toFixed(1)}`);
    const color = COLORS[i % COLORS.length];
    out.push(
      `<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"/>`,
      `<rect x="${m.l + w - 170}" y="${m.t + h - 20 - 18 * (series.length - i)}" width="12" height="12" fill="${color}"/>`,
      `<text x="${m.l + w - 152}" y="${m.t + h - 10 - 18 * (series.length - i)}">${esc(s.label)} (n=${n})</text>`,
    );
  });
  out.push('</svg>');
  return out.join('\n');
}

module.exports = { cdfChart };
