/**
 * The anywidget module (bertlab/views/dashboard.py loads the built bundle as its `_esm`).
 *
 * `initialize` runs once per widget model: it owns the custom-message handler and the model's
 * RunState, shared by every view of that model. `render` runs once per view (a cell output, a
 * second view in another panel): it builds the DOM and subscribes to the shared state.
 *
 * Nothing here ever sends to Python (no `model.send`, no `save_changes`): while `fit` runs the
 * kernel is busy and would not answer; all navigation is local.
 */

import Plotly from "plotly.js-cartesian-dist-min";
import "./dashboard.css";
import { setPlotly } from "./chart.js";
import { createCompare } from "./compare.js";
import { createDashboard } from "./dashboard.js";
import { renderStandaloneWith } from "./standalone.js";
import { RunState } from "./state.js";

setPlotly(Plotly);

/** model -> {state, detach} */
const attached = new WeakMap();

/**
 * The model's shared state, created (and wired to the model's events) on first use.
 * @param {{get: Function, on: Function, off: Function}} model
 */
function attach(model) {
  let entry = attached.get(model);
  if (entry) return entry;
  const state = new RunState();
  let seen = null; // the snapshot buffer last offered, so the rows trait does not re-offer it
  const offer = () => {
    const snap = model.get("snapshot");
    const rows = Number(model.get("snapshot_rows"));
    if (seen && seen.snap === snap && seen.rows === rows) return;
    seen = { snap, rows };
    state.offerSnapshot(snap, rows);
  };
  const handlers = {
    "msg:custom": (content, buffers) => state.handleMessage(content, buffers),
    "change:meta": () => state.setMeta(model.get("meta")),
    "change:snapshot": offer,
    "change:snapshot_rows": offer,
    "change:findings": () => state.setFindings(model.get("findings")),
    "change:verdict": () => state.setVerdict(model.get("verdict")),
    "change:epochs": () => state.setEpochs(model.get("epochs")),
    "change:status": () => state.setStatus({ status: model.get("status") }),
    "change:title": () => state.setStatus({ title: model.get("title") ?? "" }),
  };
  for (const [event, fn] of Object.entries(handlers)) model.on(event, fn);
  entry = {
    state,
    load() {
      seen = { snap: model.get("snapshot"), rows: Number(model.get("snapshot_rows")) };
      state.loadTraits(model);
    },
    detach() {
      for (const [event, fn] of Object.entries(handlers)) model.off(event, fn);
      attached.delete(model);
    },
  };
  attached.set(model, entry);
  return entry;
}

/** The comparison widget (`bertlab.compare`) shares this bundle; its `kind` trait says so. */
const isCompare = (model) => model.get("kind") === "compare";

/** anywidget lifecycle: once per model. */
function initialize({ model }) {
  if (isCompare(model)) return () => {};
  const entry = attach(model);
  entry.load();
  return () => entry.detach();
}

/** anywidget lifecycle: once per view. */
function render({ model, el }) {
  if (isCompare(model)) return createCompare(el, model);
  const entry = attach(model);
  if (entry.state.empty) entry.load();
  return createDashboard(el, entry.state);
}

const widget = { initialize, render };
export default widget;

/**
 * Render the dashboard from a plain state object, without Jupyter (`watch.to_html()`).
 * @param {HTMLElement} el
 * @param {{meta?: object, findings?: object[], epochs?: object[], snapshot?: ArrayBuffer|Uint8Array,
 *   snapshot_rows?: number, status?: string, title?: string}} state
 * @returns {() => void} cleanup
 */
export function renderStandalone(el, state) {
  return renderStandaloneWith(widget, el, state);
}
