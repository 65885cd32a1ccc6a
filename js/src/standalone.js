/**
 * The dashboard without Jupyter: `watch.to_html()` writes a page that imports the bundle and
 * calls `renderStandalone(el, state)` with the same fields the widget syncs as traits. A small
 * fake model (get/on/off) feeds the very code path the widget uses, so the page and the notebook
 * cannot drift apart.
 */

import cssText from "./dashboard.css?inline";

/**
 * A minimal stand-in for an anywidget model holding fixed state.
 * `set` fires `change:<name>` like a real model, so a page can update it (and tests can too).
 * @param {object} state
 */
export function createStandaloneModel(state = {}) {
  const values = {
    meta: {},
    findings: [],
    verdict: "",
    epochs: [],
    snapshot: null,
    snapshot_rows: 0,
    status: "done",
    title: "",
    ...state,
  };
  const listeners = new Map();
  return {
    get: (name) => values[name],
    set(name, value) {
      values[name] = value;
      for (const fn of listeners.get(`change:${name}`) || []) fn();
    },
    on(event, fn) {
      if (!listeners.has(event)) listeners.set(event, new Set());
      listeners.get(event).add(fn);
    },
    off(event, fn) {
      listeners.get(event)?.delete(fn);
    },
    /** Deliver a custom message as Python would (tests, replays). */
    emit(content, buffers = []) {
      for (const fn of listeners.get("msg:custom") || []) fn(content, buffers);
    },
    send() {},
    save_changes() {},
  };
}

/** Put the dashboard's CSS into the page once (a standalone page has no anywidget `_css`). */
export function injectCss(doc = globalThis.document) {
  if (!doc || doc.querySelector("style[data-bertlab-css]")) return;
  const style = doc.createElement("style");
  style.setAttribute("data-bertlab-css", "");
  style.textContent = cssText;
  doc.head.appendChild(style);
}

/**
 * Run the widget's lifecycle on a fake model.
 * @param {{initialize: Function, render: Function}} widget
 * @param {HTMLElement} el
 * @param {object} state
 * @returns {(() => void) & {model: object}} cleanup, with the fake model attached
 */
export function renderStandaloneWith(widget, el, state) {
  injectCss(el.ownerDocument);
  const model = createStandaloneModel(state);
  const stopModel = widget.initialize({ model });
  const stopView = widget.render({ model, el });
  const cleanup = () => {
    if (typeof stopView === "function") stopView();
    if (typeof stopModel === "function") stopModel();
  };
  cleanup.model = model;
  return cleanup;
}
