/**
 * A bounded columnar store of per-step rows, the browser's copy of the run.
 *
 * One Float32Array per scalar column (values are float32 on the wire; float64 would double the
 * memory for nothing). Memory is bounded twice: at most `maxRows` rows, and at most
 * `budgetBytes` for all columns together (a model with hundreds of classes has a wide row, so it
 * keeps fewer rows). When the store is full it halves itself: each pair of adjacent rows becomes
 * their weighted mean (a hidden weight column counts the steps a row stands for, so repeated
 * halving keeps exact bucket means). A NaN/inf in a pair stays NaN in the mean, which marks the
 * bucket: a NaN loss never disappears by compaction.
 *
 * Charts redraw incrementally: `mark()` records what was drawn, `since(mark)` says whether only
 * rows were appended since (extend the traces) or the rows changed (compaction, replace: redraw).
 */

import { channelIndex, totalWidth } from "./protocol.js";

/** Default row cap (rows, not steps: after compaction a row is the mean of several steps). */
export const DEFAULT_MAX_ROWS = 20000;
/** Default memory cap for all columns together. */
export const DEFAULT_BUDGET_BYTES = 32 * 1024 * 1024;
/** The cap never goes below this many rows, however wide a row is. */
export const MIN_ROWS = 512;

export class ColumnStore {
  /**
   * @param {Array<[string, number]>} channels `meta.channels`
   * @param {{maxRows?: number, budgetBytes?: number}} [opts]
   */
  constructor(channels, opts = {}) {
    this.channels = (channels || []).map(([name, width]) => [String(name), Number(width) || 0]);
    this.index = channelIndex(this.channels);
    this.width = totalWidth(this.channels);
    const maxRows = opts.maxRows ?? DEFAULT_MAX_ROWS;
    const budget = opts.budgetBytes ?? DEFAULT_BUDGET_BYTES;
    const byBudget = Math.floor(budget / (4 * (this.width + 1)));
    /** Rows held at most; even, so halving is exact. */
    this.capacity = Math.max(2, Math.min(maxRows, Math.max(MIN_ROWS, byBudget)) & ~1);
    this.cols = Array.from({ length: this.width }, () => new Float32Array(this.capacity));
    this.weight = new Float32Array(this.capacity);
    this.length = 0;
    /** Bumped on every change. */
    this.version = 0;
    /** Bumped when existing rows change (compaction, replace, clear): views must redraw. */
    this.generation = 0;
    /** Number of halvings so far (diagnostics, tests). */
    this.compactions = 0;
    this._listeners = new Set();
  }

  /**
   * Append `n` rows given as columns (`cols[j]` = column j, at least n long).
   * Compacts as often as needed, so any `n` fits.
   * @param {ArrayLike<number>[]} cols
   * @param {number} n
   */
  append(cols, n) {
    if (!(n > 0)) return;
    if (cols.length !== this.width) {
      throw new RangeError(`bertlab: ${cols.length} columns for a store of width ${this.width}`);
    }
    let done = 0;
    while (done < n) {
      if (this.length === this.capacity) this._compact();
      const take = Math.min(n - done, this.capacity - this.length);
      for (let j = 0; j < this.width; j++) {
        const src = cols[j];
        const dst = this.cols[j];
        if (src.subarray) dst.set(src.subarray(done, done + take), this.length);
        else for (let i = 0; i < take; i++) dst[this.length + i] = src[done + i];
      }
      this.weight.fill(1, this.length, this.length + take);
      this.length += take;
      done += take;
    }
    this._changed();
  }

  /**
   * Replace every row held by these (a snapshot from Python).
   * @param {ArrayLike<number>[]} cols
   * @param {number} n
   */
  replace(cols, n) {
    this.length = 0;
    this.generation++;
    if (n > 0) this.append(cols, n);
    else this._changed();
  }

  /** Forget every row. */
  clear() {
    this.replace([], 0);
  }

  /** Halve: rows 2i and 2i+1 become their weighted mean, in place. */
  _compact() {
    const n = this.length;
    const half = n >> 1;
    const w = this.weight;
    for (let j = 0; j < this.width; j++) {
      const c = this.cols[j];
      for (let i = 0; i < half; i++) {
        const a = 2 * i;
        c[i] = (c[a] * w[a] + c[a + 1] * w[a + 1]) / (w[a] + w[a + 1]);
      }
      if (n & 1) c[half] = c[n - 1];
    }
    for (let i = 0; i < half; i++) w[i] = w[2 * i] + w[2 * i + 1];
    if (n & 1) w[half] = w[n - 1];
    this.length = half + (n & 1);
    this.generation++;
    this.compactions++;
  }

  /** @param {string} name */
  has(name) {
    const ch = this.index.get(name);
    return !!ch && ch.width > 0;
  }

  /**
   * A channel's data: a Float32Array view (length `length`) for a scalar channel, an array of
   * `width` views for a vector channel, null when the run does not record it.
   * Views alias the store: copy before keeping them past the next append.
   * @param {string} name
   */
  column(name) {
    const ch = this.index.get(name);
    if (!ch || ch.width === 0) return null;
    if (ch.width === 1) return this.cols[ch.offset].subarray(0, this.length);
    return this.channelColumns(name);
  }

  /**
   * The columns of a (vector) channel, one view per component; null when absent.
   * @param {string} name
   * @returns {Float32Array[]|null}
   */
  channelColumns(name) {
    const ch = this.index.get(name);
    if (!ch || ch.width === 0) return null;
    const out = [];
    for (let k = 0; k < ch.width; k++) out.push(this.cols[ch.offset + k].subarray(0, this.length));
    return out;
  }

  /** Steps each row stands for (1 until the first compaction). */
  weights() {
    return this.weight.subarray(0, this.length);
  }

  /** What a view has drawn: pass it back to `since`. */
  mark() {
    return { generation: this.generation, length: this.length };
  }

  /**
   * What changed since `mark`: `{full: true}` when existing rows changed (redraw everything),
   * else `{full: false, from}`: rows `from..length` are new (none when from === length).
   * @param {{generation: number, length: number}|null} mark
   */
  since(mark) {
    if (!mark || mark.generation !== this.generation || mark.length > this.length) {
      return { full: true, from: 0 };
    }
    return { full: false, from: mark.length };
  }

  /** True when something changed after `version` (cheap check for schedulers). */
  sinceVersion(version) {
    return this.version !== version;
  }

  /**
   * Call `fn(store)` after every change.
   * @returns {() => void} unsubscribe
   */
  onChange(fn) {
    this._listeners.add(fn);
    return () => this._listeners.delete(fn);
  }

  _changed() {
    this.version++;
    for (const fn of this._listeners) fn(this);
  }
}
