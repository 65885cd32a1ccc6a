/**
 * One view of a run: header (title, status, steps counter), tab bar, the five panels and the
 * findings sidebar, wired to a shared RunState. Used by the widget's `render` and by the
 * standalone page alike.
 *
 * Redraws are coalesced: any number of messages between two animation frames cause one redraw,
 * of the visible panel only. A hidden panel is brought up to date (and resized, plotly measured
 * it while hidden) when its tab is opened. Navigation never talks to Python.
 */

import { readTheme } from "./chart.js";
import { makeContext } from "./context.js";
import { PANELS } from "./panel.js";
import { createDataPanel } from "./panels/data.js";
import { createGradientsPanel } from "./panels/gradients.js";
import { createOutputsPanel } from "./panels/outputs.js";
import { createOverviewPanel } from "./panels/overview.js";
import { createPredictionsPanel } from "./panels/predictions.js";
import { severityOf, Sidebar } from "./sidebar.js";

const FACTORIES = {
  overview: createOverviewPanel,
  gradients: createGradientsPanel,
  outputs: createOutputsPanel,
  predictions: createPredictionsPanel,
  data: createDataPanel,
};
const PANEL_NAMES = PANELS.map(([name]) => name);
const RANK = { error: 0, warning: 1, info: 2 };
/** After a draw that took t ms, the next data-driven draw waits BUSY_FACTOR * t (at most MAX_WAIT_MS). */
const BUSY_FACTOR = 3;
const MAX_WAIT_MS = 1000;
/** Below this many rows held, panels redraw at every frame with changes. */
const THROTTLE_ROWS = 2000;

/** Element helper: tag, class, text (as textContent). */
function h(doc, tag, cls, text) {
  const el = doc.createElement(tag);
  if (cls) el.className = cls;
  if (text != null) el.textContent = String(text);
  return el;
}

/** One line about the model: class, loss, optimizer and learning rate, task. */
export function modelSummary(meta) {
  const m = meta?.model || {};
  const parts = [];
  if (m.model_class) parts.push(m.model_class);
  if (m.loss) parts.push(String(m.loss));
  const lr = Number(m.learning_rate);
  // float32 learning rates arrive as 0.0010000000474974513: three significant digits
  const lrText = m.learning_rate == null ? "" : Number.isFinite(lr) ? ` (lr ${Number(lr.toPrecision(3))})` : ` (lr ${m.learning_rate})`;
  if (m.optimizer) parts.push(`${m.optimizer}${lrText}`);
  if (meta?.task) parts.push(meta.n_classes ? `${meta.task}, ${meta.n_classes} classes` : meta.task);
  return parts.join(" · ");
}

/**
 * Build the dashboard into `el`.
 * @param {HTMLElement} el
 * @param {import("./state.js").RunState} state
 * @returns {() => void} cleanup
 */
export function createDashboard(el, state) {
  const doc = el.ownerDocument || globalThis.document;
  const win = doc.defaultView || globalThis;
  const raf = win.requestAnimationFrame ? win.requestAnimationFrame.bind(win) : (fn) => setTimeout(fn, 16);
  const caf = win.cancelAnimationFrame ? win.cancelAnimationFrame.bind(win) : clearTimeout;
  const clock = () => (win.performance || globalThis.performance).now();

  const root = h(doc, "div", "bertlab-dashboard");
  const header = h(doc, "header", "bertlab-header");
  const titleEl = h(doc, "span", "bertlab-title");
  const statusEl = h(doc, "span", "bertlab-status");
  const counter = h(doc, "span", "bertlab-counter");
  const stepsEl = h(doc, "span", null, "0");
  stepsEl.dataset.role = "steps";
  const epochEl = h(doc, "span", "bertlab-epoch");
  counter.append(stepsEl, " steps", epochEl);
  const subtitle = h(doc, "div", "bertlab-subtitle");
  const titleRow = h(doc, "div", "bertlab-titlerow");
  titleRow.append(titleEl, statusEl, counter);
  header.append(titleRow, subtitle);

  const tabs = h(doc, "nav", "bertlab-tabs");
  tabs.setAttribute("role", "tablist");
  const panelBox = h(doc, "div", "bertlab-panels");
  const emptyNote = h(doc, "div", "bertlab-empty");
  const panels = {};
  const tabButtons = {};
  for (const [name, label] of PANELS) {
    const b = h(doc, "button", "bertlab-tab");
    b.type = "button";
    b.dataset.panel = name;
    b.setAttribute("role", "tab");
    b.append(h(doc, "span", "bertlab-tab-label", label), h(doc, "span", "bertlab-tab-dot"));
    b.addEventListener("click", () => setActive(name));
    tabs.append(b);
    tabButtons[name] = b;
    panels[name] = FACTORIES[name](doc);
    panelBox.append(panels[name].el);
  }
  const main = h(doc, "div", "bertlab-main");
  main.append(tabs, emptyNote, panelBox);

  let highlight = null;
  const sidebar = new Sidebar(doc, {
    onSelect(f, user) {
      highlight = f && Array.isArray(f.steps) ? { code: f.code, panel: f.panel, steps: f.steps } : null;
      if (f && user) setActive(PANEL_NAMES.includes(f.panel) ? f.panel : "overview");
      schedule(true);
    },
  });
  const body = h(doc, "div", "bertlab-body");
  body.append(main, sidebar.el);
  root.append(header, body);
  el.append(root);

  let active = null;
  let frame = 0;
  const dirty = { header: true, sidebar: true, resize: false };

  /** Show one panel (local only: no message to Python). */
  function setActive(name) {
    if (!PANEL_NAMES.includes(name)) return;
    if (active !== name) {
      active = name;
      root.dataset.activePanel = name;
      for (const n of PANEL_NAMES) {
        panels[n].el.hidden = n !== name;
        tabButtons[n].setAttribute("aria-selected", String(n === name));
        tabButtons[n].classList.toggle("bertlab-active", n === name);
      }
      dirty.resize = true;
    }
    schedule(true);
  }

  // Redraws coalesce into one per animation frame. The header and sidebar are cheap and
  // follow every frame; the panel, when drawing it got expensive (tens of thousands of
  // points), waits BUSY_FACTOR times its last cost after it, so the page keeps most of the
  // main thread for the notebook. A click (tab, finding) draws at the next frame regardless.
  let timer = 0;
  let notBefore = 0;
  let forced = false;
  function schedule(now = false) {
    if (now) forced = true;
    if (!frame) frame = raf(draw);
  }

  function renderHeader() {
    titleEl.textContent = state.title || "bertlab";
    root.dataset.status = state.status || "waiting";
    statusEl.textContent = state.status || "waiting";
    stepsEl.textContent = String(state.steps);
    epochEl.textContent = epochText(state);
    subtitle.textContent = modelSummary(state.meta);
    emptyNote.hidden = !state.empty;
    emptyNote.textContent =
      state.status === "waiting" || state.status === "running" ? "Waiting for the first training step…" : "No training step was recorded.";
  }

  function renderTabDots() {
    const worst = {};
    for (const f of state.findings) {
      if (f.status === "resolved") continue;
      const p = PANEL_NAMES.includes(f.panel) ? f.panel : "overview";
      const s = severityOf(f);
      if (!(p in worst) || RANK[s] < RANK[worst[p]]) worst[p] = s;
    }
    for (const n of PANEL_NAMES) {
      const dot = tabButtons[n].querySelector(".bertlab-tab-dot");
      if (worst[n]) dot.dataset.severity = worst[n];
      else delete dot.dataset.severity;
    }
  }

  function draw() {
    frame = 0;
    if (dirty.header) renderHeader();
    if (dirty.sidebar) {
      sidebar.update(state.findings, state.status, state.meta?.notes, state.verdict);
      renderTabDots();
    }
    dirty.header = dirty.sidebar = false;
    const panel = panels[active];
    // Plotly measures its container: draw only once the view is laid out (ResizeObserver
    // schedules a frame when it is).
    if (!root.isConnected || (root.offsetWidth === 0 && hasLayout(doc))) return;
    const t0 = clock();
    if (!forced && t0 < notBefore) {
      if (!timer) timer = win.setTimeout(() => ((timer = 0), schedule()), notBefore - t0);
      return;
    }
    // Throttle only for big runs (small ones draw cheaply every frame, so the first steps show
    // at once); a click's draw (first plot, panel switch) is not the streaming cost either.
    const measured = !forced && (state.store?.length ?? 0) > THROTTLE_ROWS;
    forced = false;
    const ctx = makeContext(state, { highlight, theme: readTheme(root) });
    panel.update(ctx);
    if (dirty.resize) {
      dirty.resize = false;
      panel.resize();
    }
    const t1 = clock();
    notBefore = measured ? t1 + Math.min(MAX_WAIT_MS, BUSY_FACTOR * (t1 - t0)) : 0;
  }

  const unsubscribe = state.subscribe((kinds) => {
    if (kinds.has("status") || kinds.has("meta") || kinds.has("data")) dirty.header = true;
    if (kinds.has("findings") || kinds.has("status") || kinds.has("meta")) dirty.sidebar = true;
    schedule();
  });

  let observer = null;
  if (win.ResizeObserver) {
    observer = new win.ResizeObserver(() => {
      dirty.resize = true;
      schedule();
    });
    observer.observe(root);
  }

  // Header and findings right away (they are cheap); the charts at the first frame.
  renderHeader();
  sidebar.update(state.findings, state.status, state.meta?.notes, state.verdict);
  renderTabDots();
  dirty.header = dirty.sidebar = false;
  setActive("overview");
  return function cleanup() {
    unsubscribe();
    if (frame) caf(frame);
    if (timer) win.clearTimeout(timer);
    frame = timer = 0;
    observer?.disconnect();
    for (const p of Object.values(panels)) p.destroy();
    root.remove();
  };
}

/**
 * The epoch part of the step counter. `status.epoch` counts finished epochs, so while training
 * runs the current one is that + 1; otherwise the finished epochs are counted.
 */
export function epochText(state) {
  const done = Number.isFinite(Number(state.epoch)) && state.epoch !== null ? Number(state.epoch) : state.epochs.length;
  if (state.status === "running") return ` · epoch ${done + 1}`;
  return done > 0 ? ` · ${done} epoch${done === 1 ? "" : "s"}` : "";
}

/** False in DOM emulations without layout (tests), where every size reads 0. */
function hasLayout(doc) {
  return !/happydom|jsdom/i.test(doc.defaultView?.navigator?.userAgent || "");
}
