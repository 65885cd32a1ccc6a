/**
 * The comparison view (`bertlab.compare(a, b, ...)`, Python: bertlab/views/compare.py): several
 * runs overlaid on shared charts, one colour per run, and each run's findings in the sidebar,
 * grouped by run. The widget's `kind` trait is "compare"; its `runs` trait holds one object per
 * run: {name, status, steps, model, series: {step, loss, grad_norm, top_share}, epochs,
 * findings} (series already downsampled by Python, null for non-finite values).
 *
 * DOM contract (browser tests): root `.bertlab-dashboard.bertlab-compare[data-runs="<n>"]`;
 * charts `.bertlab-chart[data-chart="loss|grad_norm|top_share|epoch_loss|epoch_metrics"]` with
 * `data-points` (points of the first run's trace); one `.bertlab-compare-group[data-run="<i>"]`
 * per run holding a `.bertlab-sidebar` whose `.bertlab-finding` items are that run's findings;
 * `[data-role="run-steps"][data-run="<i>"]` = steps of run i. Every run text is textContent.
 */

import { baseLayout, Chart, LOG_TICKS, plotlyText, readTheme } from "./chart.js";
import { metricKeys } from "./series.js";
import { Sidebar } from "./sidebar.js";

export const RUN_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
/** The colour of run `i` (legend, lines, sidebar swatch). */
export const runColor = (i) => RUN_COLORS[i % RUN_COLORS.length];

const num = (v) => (v != null && Number.isFinite(Number(v)) ? Number(v) : null);
const nameOf = (run, i) => String(run?.name ?? `run ${i + 1}`);

/**
 * One line trace per run for a step series (`loss`, `grad_norm`, `top_share`).
 * @param {object[]} runs
 * @param {string} key
 */
export function seriesTraces(runs, key) {
  return (runs || []).map((run, i) => {
    const s = run?.series || {};
    const y = Array.isArray(s[key]) ? s[key].map(num) : [];
    const steps = Array.isArray(s.step) ? s.step.map(num) : [];
    const x = y.map((_, j) => (j < steps.length ? steps[j] : j));
    const name = plotlyText(nameOf(run, i));
    return { type: "scatter", mode: "lines", name, x, y, line: { color: runColor(i), width: 1.3 } };
  });
}

/**
 * Epoch traces per run and key at the epoch's step (train dotted, validation solid).
 * @param {object[]} runs
 * @param {(keys: string[]) => string[]} pick which keys of the records to draw
 */
export function epochTraces(runs, pick) {
  const traces = [];
  (runs || []).forEach((run, i) => {
    const epochs = Array.isArray(run?.epochs) ? run.epochs : [];
    const keys = pick([...new Set(epochs.flatMap((e) => Object.keys(e || {})))]);
    for (const key of keys) {
      const rows = epochs.filter((e) => num(e?.[key]) != null);
      traces.push({
        type: "scatter",
        mode: "lines+markers",
        name: plotlyText(`${nameOf(run, i)}: ${key}`),
        x: rows.map((e) => num(e.steps) ?? num(e.epoch)),
        y: rows.map((e) => num(e[key])),
        line: { color: runColor(i), width: 1.3, dash: key.startsWith("val_") ? "solid" : "dot" },
        marker: { size: 5 },
      });
    }
  });
  return traces;
}

const lossKeys = (keys) => ["loss", "val_loss"].filter((k) => keys.includes(k));

/** Chart specs of the comparison (pure: testable without plotly). */
export const SPECS = [
  { name: "loss", title: "Batch loss", build: (ctx) => lines(ctx, "loss", { ytitle: "loss" }) },
  { name: "grad_norm", title: "Gradient norm (global L2)", build: (ctx) => lines(ctx, "grad_norm", { ylog: true }) },
  {
    name: "top_share",
    title: "Share of the most predicted class (1 = every prediction the same class)",
    build: (ctx) => lines(ctx, "top_share", { yrange: [0, 1.02] }),
  },
  { name: "epoch_loss", title: "Epoch loss (train dotted, validation solid)", build: (ctx) => epochs(ctx, lossKeys) },
  {
    name: "epoch_metrics",
    title: "Epoch metrics (train dotted, validation solid)",
    build: (ctx) => epochs(ctx, (keys) => metricKeys([Object.fromEntries(keys.map((k) => [k, 0]))])),
  },
];

function lines(ctx, key, o) {
  const traces = seriesTraces(ctx.runs, key);
  if (!traces.some((t) => t.y.some((v) => v != null))) return { empty: "not recorded (yet)" };
  const layout = baseLayout(ctx, { ylog: o.ylog, ytitle: o.ytitle });
  if (o.ylog) Object.assign(layout.yaxis, LOG_TICKS);
  if (o.yrange) layout.yaxis.range = o.yrange;
  return { traces, layout };
}

function epochs(ctx, pick) {
  const traces = epochTraces(ctx.runs, pick);
  if (!traces.length) return { empty: "no epoch has ended yet" };
  return { traces, layout: baseLayout(ctx, {}) };
}

function h(doc, tag, cls, text) {
  const el = doc.createElement(tag);
  if (cls) el.className = cls;
  if (text != null) el.textContent = String(text);
  return el;
}

/**
 * Build the comparison into `el`, fed by a model's `runs` and `title` traits.
 * @param {HTMLElement} el
 * @param {{get: Function, on: Function, off: Function}} model
 * @returns {() => void} cleanup
 */
export function createCompare(el, model) {
  const doc = el.ownerDocument || globalThis.document;
  const win = doc.defaultView || globalThis;
  const raf = win.requestAnimationFrame ? win.requestAnimationFrame.bind(win) : (fn) => setTimeout(fn, 16);
  const root = h(doc, "div", "bertlab-dashboard bertlab-compare");
  const header = h(doc, "header", "bertlab-header");
  const titleEl = h(doc, "span", "bertlab-title");
  const legend = h(doc, "div", "bertlab-compare-legend");
  header.append(titleEl, legend);
  const grid = h(doc, "div", "bertlab-panel bertlab-compare-charts");
  const charts = SPECS.map((spec) => new Chart({ ...spec, rows: false }, doc));
  grid.append(...charts.map((c) => c.el));
  const main = h(doc, "div", "bertlab-main bertlab-compare-main");
  main.append(grid);
  const side = h(doc, "div", "bertlab-compare-side");
  const body = h(doc, "div", "bertlab-body");
  body.append(main, side);
  root.append(header, body);
  el.append(root);

  let highlight = null;
  let groups = [];
  let frame = 0;
  let version = 0;
  // A draw refreshes the sidebars, and a sidebar with a selected finding answers each refresh
  // with onSelect: scheduling from there would redraw every frame, forever (a core busy while
  // the page sits idle). The draw in progress picks the new highlight up itself.
  let drawing = false;

  function sidebars(runs) {
    if (groups.length !== runs.length) {
      groups = runs.map((_, i) => {
        const group = h(doc, "div", "bertlab-compare-group");
        group.dataset.run = String(i);
        const sidebar = new Sidebar(doc, {
          onSelect(f, user) {
            if (user) for (const other of groups) if (other.sidebar !== sidebar && other.sidebar.selected) other.sidebar.select(null, false);
            if (user || f) highlight = f && Array.isArray(f.steps) ? { steps: f.steps } : null;
            if (!drawing) schedule();
          },
        });
        group.append(sidebar.el);
        return { group, sidebar };
      });
      side.replaceChildren(...groups.map((g) => g.group));
    }
    runs.forEach((run, i) => {
      const { sidebar } = groups[i];
      sidebar.heading.textContent = nameOf(run, i);
      sidebar.heading.style.borderLeft = `4px solid ${runColor(i)}`;
      sidebar.heading.style.paddingLeft = "6px";
      sidebar.update(run?.findings || [], run?.status || "done", []);
    });
  }

  function draw() {
    frame = 0;
    drawing = true;
    try {
      render();
    } finally {
      drawing = false;
    }
  }

  function render() {
    const runs = Array.isArray(model.get("runs")) ? model.get("runs") : [];
    titleEl.textContent = model.get("title") || "bertlab: comparison";
    root.dataset.runs = String(runs.length);
    legend.replaceChildren(
      ...runs.map((run, i) => {
        const item = h(doc, "span", "bertlab-compare-run");
        const swatch = h(doc, "span", "bertlab-compare-swatch");
        swatch.style.background = runColor(i);
        const steps = h(doc, "span", null, String(Number(run?.steps) || 0));
        steps.dataset.role = "run-steps";
        steps.dataset.run = String(i);
        const setup = run?.model ? ` · ${run.model}` : "";
        item.append(swatch, h(doc, "b", null, nameOf(run, i)), ` ${run?.status || ""} · `, steps, ` steps${setup}`);
        return item;
      }),
    );
    sidebars(runs);
    const ctx = { runs, highlight, theme: readTheme(root), key: ++version };
    for (const chart of charts) chart.update(ctx, true);
  }

  function schedule() {
    if (!frame) frame = raf(draw);
  }

  const onChange = () => schedule();
  model.on("change:runs", onChange);
  model.on("change:title", onChange);
  draw();
  const resize = () => charts.forEach((c) => c.resize());
  win.addEventListener?.("resize", resize);
  return () => {
    model.off("change:runs", onChange);
    model.off("change:title", onChange);
    win.removeEventListener?.("resize", resize);
    charts.forEach((c) => c.destroy());
  };
}
