/**
 * A dashboard panel: a grid of blocks (charts, badges) shown under one tab. Only the visible
 * panel draws; the dashboard calls `update` for it on each animation frame with changes, and
 * once more (plus `resize`) when it becomes visible, so a hidden panel catches up then.
 */

import { Chart } from "./chart.js";

/** Panel names, in tab order, with their tab labels. */
export const PANELS = [
  ["overview", "Overview"],
  ["gradients", "Gradients"],
  ["outputs", "Outputs"],
  ["predictions", "Predictions"],
  ["data", "Data"],
];

export class Panel {
  /**
   * @param {string} name
   * @param {Array<object>} parts chart specs, or blocks `{el, update(ctx, force)}`
   * @param {Document} doc
   */
  constructor(name, parts, doc = globalThis.document) {
    this.name = name;
    this.el = doc.createElement("section");
    this.el.className = "bertlab-panel";
    this.el.dataset.panel = name;
    this.el.hidden = true;
    this.blocks = parts.map((p) => (typeof p.build === "function" ? new Chart(p, doc) : p));
    for (const b of this.blocks) {
      if (b.spec?.wide) b.el.classList.add("bertlab-wide");
      if (b.spec?.tall) b.el.classList.add("bertlab-tall");
      this.el.appendChild(b.el);
    }
  }

  /** The panel's charts (for tests and the highlight). */
  get charts() {
    return this.blocks.filter((b) => b instanceof Chart);
  }

  /** Bring every block up to date; `force` redraws even unchanged charts. */
  update(ctx, force = false) {
    for (const b of this.blocks) {
      try {
        b.update(ctx, force);
      } catch (err) {
        console.error(`bertlab: ${this.name} panel failed to update`, err);
      }
    }
  }

  resize() {
    for (const b of this.blocks) b.resize?.();
  }

  destroy() {
    for (const b of this.blocks) b.destroy?.();
  }
}
