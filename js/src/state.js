/**
 * The per-model data of one dashboard: the columnar step store, meta, epochs, findings and
 * status, fed by Python's custom messages and by the widget's state traits (README,
 * "Protocol"). All views of one widget model share one RunState, so a second view of the same
 * widget shows the same data without asking Python (the kernel may be busy training).
 */

import { decodeColumns, dropRows, maxFinite, totalWidth } from "./protocol.js";
import { ColumnStore } from "./store.js";

/** Trait names the dashboard reads. */
export const TRAITS = ["meta", "findings", "verdict", "epochs", "snapshot", "snapshot_rows", "status", "title"];

export class RunState {
  /** @param {{maxRows?: number, budgetBytes?: number}} [storeOpts] */
  constructor(storeOpts = {}) {
    this.storeOpts = storeOpts;
    this.meta = {};
    /** @type {ColumnStore|null} null until meta names the channels */
    this.store = null;
    this.findings = [];
    /** One sentence over the findings: root cause, symptoms, evidence (Python's verdict). */
    this.verdict = "";
    this.epochs = [];
    this.status = "waiting";
    this.title = "";
    /** Largest `step` value ever held (bucket means never lower it); -Infinity when empty. */
    this.lastStep = -Infinity;
    /** Step count Python reported in its last `status` message. */
    this.reportedSteps = 0;
    this.epoch = null;
    /** Global cursor after the last delta; null when unknown (data loaded from traits). */
    this.cursor = null;
    /** Bumped per kind of change, so views can tell what they have already drawn. */
    this.versions = { meta: 0, data: 0, findings: 0, epochs: 0, status: 0 };
    this._listeners = new Set();
  }

  /** True when no step is held. */
  get empty() {
    return !this.store || this.store.length === 0;
  }

  /** Steps recorded: the last step value + 1 (rows are downsampled, so counting them is wrong). */
  get steps() {
    const fromData = Number.isFinite(this.lastStep) ? Math.round(this.lastStep) + 1 : 0;
    const fromMeta = Number(this.meta?.steps); // optional: exact count beside a downsampled snapshot
    return Math.max(fromData, this.reportedSteps || 0, Number.isFinite(fromMeta) ? fromMeta : 0);
  }

  /**
   * Call `fn(kinds)` after changes; `kinds` is a Set of "meta" | "data" | "findings" |
   * "epochs" | "status".
   * @returns {() => void} unsubscribe
   */
  subscribe(fn) {
    this._listeners.add(fn);
    return () => this._listeners.delete(fn);
  }

  _emit(...kinds) {
    for (const k of kinds) this.versions[k]++;
    const set = new Set(kinds);
    for (const fn of this._listeners) {
      try {
        fn(set);
      } catch (err) {
        console.error("bertlab: a dashboard view failed to update", err);
      }
    }
  }

  /** Set meta; a different channel layout starts a new, empty store. */
  setMeta(meta) {
    this.meta = meta && typeof meta === "object" ? meta : {};
    const channels = Array.isArray(this.meta.channels) ? this.meta.channels : null;
    const same = this.store && channels && sameChannels(this.store.channels, channels);
    if (!same) {
      this.store = channels && totalWidth(channels) > 0 ? new ColumnStore(channels, this.storeOpts) : null;
      this.lastStep = -Infinity;
      this.cursor = null;
      this.reportedSteps = 0;
      this._emit("meta", "data");
    } else {
      this._emit("meta");
    }
  }

  /**
   * Decode a column-major buffer in the current layout; null (with a warning) when there is no
   * layout yet or the widths disagree, so a malformed message never breaks the dashboard.
   */
  _decode(buf, rows, columns) {
    if (!this.store) {
      console.warn("bertlab: step data before the layout (meta); ignored");
      return null;
    }
    if (columns != null && Number(columns) !== this.store.width) {
      console.warn(`bertlab: ${columns} columns, the layout has ${this.store.width}; ignored`);
      return null;
    }
    return decodeColumns(buf, this.store.width, rows);
  }

  _stepColumn(block) {
    const ch = this.store.index.get("step");
    return ch ? block.cols[ch.offset] : null;
  }

  /** Append a `steps` delta (rows `start..stop` of the global cursor). */
  appendSteps(content, buf) {
    let block = this._decode(buf, content.stop - content.start, content.columns);
    if (!block || block.n === 0) return;
    const start = Number(content.start);
    if (this.cursor != null && Number.isFinite(start) && start < this.cursor) {
      block = dropRows(block, this.cursor - start); // already held
    } else if (this.cursor == null && Number.isFinite(this.lastStep)) {
      // Held data came from the traits (no cursor): skip the steps it already covers.
      const steps = this._stepColumn(block);
      let k = 0;
      while (steps && k < block.n && steps[k] <= this.lastStep) k++;
      block = dropRows(block, k);
    }
    const stop = Number(content.stop);
    if (Number.isFinite(stop)) this.cursor = this.cursor == null ? stop : Math.max(this.cursor, stop); // never back: a replayed delta stays a duplicate
    if (block.n === 0) return;
    this.lastStep = Math.max(this.lastStep, maxFinite(this._stepColumn(block)));
    this.store.append(block.cols, block.n);
    this._emit("data");
  }

  /** Replace all rows (a `snapshot` message or the `snapshot` trait). */
  replaceSteps(buf, rows, cursor = null) {
    const block = this._decode(buf, rows, null);
    if (!block) return;
    this.lastStep = maxFinite(this._stepColumn(block));
    this.cursor = cursor == null || !Number.isFinite(Number(cursor)) ? null : Number(cursor);
    this.store.replace(block.cols, block.n);
    this._emit("data");
  }

  /**
   * The snapshot trait arrived (reload, train end): take it unless the streamed rows are
   * finer. It replaces the store when it covers more steps, or as many steps with at least as
   * many rows; otherwise the streamed rows (up to the store's capacity) stay.
   */
  offerSnapshot(buf, rows) {
    if (!this.store) return;
    const block = this._decode(buf, rows, null);
    if (!block || block.n === 0) return;
    const last = maxFinite(this._stepColumn(block));
    const covers = last > this.lastStep || (last === this.lastStep && block.n >= this.store.length);
    if (this.empty || covers) this.replaceSteps(buf, rows, null);
  }

  /** Add one epoch record; a record for the same epoch and step count replaces the old one. */
  addEpoch(record) {
    if (!record || typeof record !== "object") return;
    const i = this.epochs.findIndex((r) => r.epoch === record.epoch && r.steps === record.steps);
    if (i >= 0) this.epochs[i] = record;
    else this.epochs.push(record);
    this._emit("epochs");
  }

  setEpochs(list) {
    this.epochs = Array.isArray(list) ? list.slice() : [];
    this._emit("epochs");
  }

  /**
   * @param {object[]} list
   * @param {string} [verdict] the verdict sent with them (kept when not given)
   */
  setFindings(list, verdict) {
    this.findings = Array.isArray(list) ? list.filter((f) => f && typeof f === "object") : [];
    if (typeof verdict === "string") this.verdict = verdict;
    this._emit("findings");
  }

  /** @param {string} text */
  setVerdict(text) {
    this.verdict = typeof text === "string" ? text : "";
    this._emit("findings");
  }

  setStatus({ status, steps, epoch, title } = {}) {
    if (typeof status === "string" && status) this.status = status;
    if (Number.isFinite(Number(steps)) && steps !== null) this.reportedSteps = Number(steps);
    if (epoch !== undefined) this.epoch = epoch;
    if (typeof title === "string") this.title = title;
    this._emit("status");
  }

  /**
   * Handle one custom message from Python.
   * @param {{type: string}} content
   * @param {Array<*>} [buffers]
   */
  handleMessage(content, buffers = []) {
    if (!content || typeof content !== "object") return;
    const buf = buffers && buffers[0];
    switch (content.type) {
      case "meta":
        return this.setMeta(content.meta);
      case "steps":
        return this.appendSteps(content, buf);
      case "snapshot":
        return this.replaceSteps(buf, content.rows, content.cursor);
      case "epoch":
        return this.addEpoch(content.record);
      case "findings":
        return this.setFindings(content.findings, content.verdict);
      case "status":
        return this.setStatus(content);
      default:
        console.warn(`bertlab: unknown message type ${content.type}`);
    }
  }

  /** Load everything from the model's traits (first view, a reopened notebook). */
  loadTraits(model) {
    this.setMeta(model.get("meta"));
    this.setEpochs(model.get("epochs"));
    this.setFindings(model.get("findings"), model.get("verdict") ?? "");
    this.setStatus({ status: model.get("status"), title: model.get("title") ?? "" });
    const snap = model.get("snapshot");
    if (snap != null) this.offerSnapshot(snap, Number(model.get("snapshot_rows")));
  }
}

function sameChannels(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (String(a[i][0]) !== String(b[i][0]) || Number(a[i][1]) !== Number(b[i][1])) return false;
  }
  return true;
}
