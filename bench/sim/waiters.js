// @ts-check
'use strict';
/** Callbacks waiting for one kind of moment (a view change, a free slot), all woken together. */
class Waiters {
  constructor() {
    /** @type {(() => void)[]} */
    this.list = [];
  }
  /** Wakes every waiter registered so far. */
  wake() {
    const w = this.list;
    this.list = [];
    for (const f of w) f();
  }
  /** @returns {Promise<void>} resolved at the next wake */
  next() {
    return new Promise((resolve) => this.list.push(resolve));
  }
  /**
   * @param {number} timeoutMs
   * @param {string} message the error when nothing woke it in time
   * @returns {Promise<void>} resolved at the next wake, rejected after `timeoutMs`
   */
  nextWithin(timeoutMs, message) {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(message)), timeoutMs);
      this.list.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

module.exports = { Waiters };
