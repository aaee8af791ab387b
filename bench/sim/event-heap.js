// @ts-check
'use strict';
/** The replay's event queue: a binary min-heap ordered by (time, insertion order). */

/**
 * @template T
 * @typedef {{ time: number, seq: number, ev: T }} HeapEntry
 */

/** @template T */
class Heap {
  /**
   * The entry at `i` (callers stay within the array).
   * @param {number} i
   * @returns {HeapEntry<T>}
   */
  at(i) {
    return /** @type {HeapEntry<T>} */ (this.a[i]);
  }

  constructor() {
    /** @type {HeapEntry<T>[]} */
    this.a = [];
    this.seq = 0;
  }
  get size() {
    return this.a.length;
  }
  /**
   * @param {number} time
   * @param {T} ev
   */
  push(time, ev) {
    const a = this.a;
    a.push({ time, seq: this.seq++, ev });
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.less(this.at(i), this.at(p))) {
        [a[i], a[p]] = [this.at(p), this.at(i)];
        i = p;
      } else break;
    }
  }
  /** @returns {HeapEntry<T> | undefined} */
  peek() {
    return this.a[0];
  }
  /** @returns {HeapEntry<T>} the earliest entry (the heap must not be empty) */
  pop() {
    const a = this.a;
    const top = this.at(0);
    const last = /** @type {HeapEntry<T>} */ (a.pop());
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(this.at(l), this.at(m))) m = l;
        if (r < a.length && this.less(this.at(r), this.at(m))) m = r;
        if (m === i) break;
        [a[i], a[m]] = [this.at(m), this.at(i)];
        i = m;
      }
    }
    return top;
  }
  /**
   * @param {HeapEntry<T>} x
   * @param {HeapEntry<T>} y
   */
  less(x, y) {
    return x.time < y.time || (x.time === y.time && x.seq < y.seq);
  }
}

module.exports = { Heap };
