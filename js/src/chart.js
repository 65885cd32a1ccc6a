/**
 * One plotly chart of a panel, and the layout pieces every chart shares.
 *
 * A chart is described by a *spec* whose functions are pure (testable without plotly):
 *   name            -> data-chart attribute
 *   title           -> shown above the plot (page text, not a plotly title); a string or
 *                      title(ctx) when it depends on the run (e.g. the task)
 *   build(ctx)      -> {traces, layout} or {empty: "why nothing is drawn"}
 *   series(ctx, from, to) (optional) -> [{x, y}, ...]: the first traces' points for store rows
 *                      from..to; when present, appended rows extend the traces
 *                      (Plotly.extendTraces) instead of redrawing them
 *   rows (default true) -> false when the chart does not read the step store
 *   height(ctx) (optional) -> box height in px (a heatmap with many rows grows)
 *
 * Plotly is injected (`setPlotly`) by the bundle's entry, so everything else runs (and is
 * tested) without it: with no plotly the chart still computes its figure and `data-points`.
 */

let Plotly = null;

/** Give the charts a plotly module (the bundle entry does; tests do not). */
export function setPlotly(p) {
  Plotly = p || null;
}

/** Local-only interaction: no plotly cloud, no MathJax, no network. */
export const PLOT_CONFIG = {
  displaylogo: false,
  displayModeBar: "hover",
  responsive: false,
  showTips: false,
  showLink: false,
  showSources: false,
  typesetMath: false,
  showSendToCloud: false,
  // zoom/pan/reset and PNG export stay; selection tools and cloud/JSON export go
  modeBarButtonsToRemove: ["select2d", "lasso2d", "sendDataToCloud", "sendChartToCloud", "downloadJson"],
};

/** Escape user text (class and layer names) for plotly, which reads a subset of HTML tags. */
export function plotlyText(s) {
  return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Colours shared by the panels (readable on light and dark backgrounds). */
export const COLORS = {
  loss: "#1f77b4",
  trend: "#ff7f0e",
  val: "#2ca02c",
  bad: "#d62728",
  warn: "#e8a33d",
  muted: "#8c8c8c",
  pred: "#1f77b4",
  label: "#9aa5b1",
  accent: "#9467bd",
};

/**
 * Text colour, font and grid colour of the surrounding page (JupyterLab light or dark theme).
 * @param {HTMLElement} el
 */
export function readTheme(el) {
  const style = el && el.ownerDocument?.defaultView?.getComputedStyle?.(el);
  const fg = (style && style.color) || "rgb(51, 51, 51)";
  const rgb = (fg.match(/\d+(\.\d+)?/g) || [51, 51, 51]).map(Number);
  const dark = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 140;
  return {
    fg,
    font: (style && style.fontFamily) || "sans-serif",
    dark,
    grid: dark ? "rgba(255,255,255,0.12)" : "rgba(0,0,0,0.09)",
    icon: dark ? "rgba(255,255,255,0.45)" : "rgba(0,0,0,0.35)",
  };
}

/** The shaded step range of the selected finding, for step-axis charts. */
export function highlightShapes(ctx) {
  const steps = ctx.highlight?.steps;
  if (!Array.isArray(steps) || steps.length < 2) return [];
  const [a, b] = steps.map(Number);
  if (!Number.isFinite(a) || !Number.isFinite(b)) return [];
  const base = { type: "rect", xref: "x", yref: "paper", y0: 0, y1: 1, layer: "above" };
  const shade = { fillcolor: "rgba(255,165,0,0.16)", line: { color: "rgba(255,140,0,0.8)", width: 1 } };
  return [{ ...base, ...shade, x0: Math.min(a, b) - 0.5, x1: Math.max(a, b) + 0.5 }];
}

/**
 * The layout every chart starts from.
 * @param {object} ctx
 * @param {{xtitle?: string, ytitle?: string, ylog?: boolean, stepAxis?: boolean, legend?: boolean}} o
 */
export function baseLayout(ctx, o = {}) {
  const t = ctx.theme || readTheme(null);
  const axis = { gridcolor: t.grid, zerolinecolor: t.grid, linecolor: t.grid, automargin: true };
  return {
    autosize: true,
    margin: { l: 48, r: 12, t: 22, b: 30, pad: 0 },
    font: { family: t.font, size: 11, color: t.fg },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    xaxis: {
      ...axis,
      title: { text: o.xtitle ?? (o.stepAxis === false ? "" : "step"), standoff: 4 },
      // steps are never negative: marker padding must not open the axis at -5%
      ...(o.stepAxis === false ? {} : { autorangeoptions: { minallowed: 0 } }),
    },
    yaxis: {
      ...axis,
      type: o.ylog ? "log" : "linear",
      title: { text: o.ytitle || "" },
      exponentformat: "power",
      ...(o.ylog ? LOG_TICKS : {}),
    },
    showlegend: o.legend !== false,
    // top left: the mode bar appears top right on hover
    legend: { orientation: "h", x: 0, xanchor: "left", y: 1.0, yanchor: "bottom", bgcolor: "rgba(0,0,0,0)", font: { size: 10 } },
    hovermode: "closest",
    modebar: { bgcolor: "rgba(0,0,0,0)", color: t.icon, activecolor: t.fg },
    hoverlabel: { font: { size: 11 } },
    uirevision: "bertlab",
    shapes: o.stepAxis === false ? [] : highlightShapes(ctx),
  };
}

/**
 * Give every trace its own x/y arrays. Series builders share one x array between traces;
 * plotly's extendTraces appends in place, so a shared array would grow once per trace.
 * @param {Array<{x?: unknown[], y?: unknown[]}>} traces
 */
export function unshare(traces) {
  const seen = new Set();
  for (const t of traces) {
    for (const k of ["x", "y"]) {
      const a = t[k];
      if (!Array.isArray(a)) continue;
      if (seen.has(a)) t[k] = a.slice();
      else seen.add(a);
    }
  }
  return traces;
}

/** Log axes: ticks at 1, 2, 5 x powers of ten, written out in full (0.5, 2, 10, 1e-3...). */
export const LOG_TICKS = { dtick: "D2", tickformat: "~g" };

/** Points in a trace: x length, or columns of a heatmap. */
export function countPoints(trace) {
  if (!trace) return 0;
  if (trace.type === "heatmap" && Array.isArray(trace.z)) return trace.z[0]?.length ?? 0;
  return (trace.x || trace.y || []).length ?? 0;
}

/** A chart box (title, plot, "not recorded" note) driven by a spec; see the module comment. */
export class Chart {
  constructor(spec, doc = globalThis.document) {
    this.spec = spec;
    this.el = doc.createElement("div");
    this.el.className = "bertlab-chart";
    this.el.dataset.chart = spec.name;
    this.el.dataset.points = "0";
    this.titleEl = doc.createElement("div");
    this.titleEl.className = "bertlab-chart-title";
    this.titleEl.textContent = typeof spec.title === "function" ? "" : spec.title || "";
    this.plot = doc.createElement("div");
    this.plot.className = "bertlab-plot";
    this.note = doc.createElement("div");
    this.note.className = "bertlab-chart-note";
    this.note.hidden = true;
    this.el.append(this.titleEl, this.plot, this.note);
    this.drawn = null;
    this.plotted = false;
    this.shown = false;
    this.points = 0;
  }

  /**
   * Bring the chart up to date with `ctx`: nothing when nothing it reads changed, extend
   * when only rows were appended, redraw otherwise.
   * @returns {boolean} whether anything was drawn
   */
  update(ctx, force = false) {
    const spec = this.spec;
    const usesRows = spec.rows !== false;
    const mark = usesRows && ctx.store ? ctx.store.mark() : { generation: 0, length: 0 };
    const key = spec.key ? spec.key(ctx) : ctx.key;
    const d = this.drawn;
    if (!force && d && d.key === key && d.generation === mark.generation) {
      if (mark.length === d.length) return false;
      if (spec.series && this.shown && mark.length > d.length) {
        this._extend(ctx, d.length, mark.length);
        this.drawn = { key, ...mark };
        return true;
      }
    }
    this._full(ctx);
    this.drawn = { key, ...mark };
    return true;
  }

  _full(ctx) {
    if (typeof this.spec.title === "function") this.titleEl.textContent = this.spec.title(ctx);
    const height = this.spec.height?.(ctx);
    if (height > 0) this.el.style.height = `${Math.round(height)}px`;
    let fig;
    try {
      fig = this.spec.build(ctx);
    } catch (err) {
      console.error(`bertlab: chart ${this.spec.name} failed`, err);
      fig = { empty: `could not draw this chart (${err.message})` };
    }
    if (!fig || fig.empty) {
      this._setPoints(0);
      this.note.textContent = fig?.empty || "not recorded";
      this.note.hidden = false;
      this.plot.hidden = true;
      if (this.plotted && Plotly) Plotly.purge(this.plot);
      this.plotted = false;
      this.shown = false;
      return;
    }
    this.shown = true;
    this.note.hidden = true;
    this.plot.hidden = false;
    this._setPoints(countPoints(fig.traces[0]));
    if (!Plotly) return;
    this.plotted = true;
    Promise.resolve(Plotly.react(this.plot, unshare(fig.traces), fig.layout, PLOT_CONFIG)).catch((err) =>
      console.error(`bertlab: plotly failed on ${this.spec.name}`, err),
    );
  }

  _extend(ctx, from, to) {
    const parts = unshare(this.spec.series(ctx, from, to));
    this._setPoints(this.points + (parts[0]?.x.length ?? 0));
    if (!Plotly || !this.plotted || !parts.some((p) => p.x.length)) return;
    const update = { x: parts.map((p) => p.x), y: parts.map((p) => p.y) };
    Promise.resolve(Plotly.extendTraces(this.plot, update, parts.map((_, i) => i))).catch((err) =>
      console.error(`bertlab: plotly failed to extend ${this.spec.name}`, err),
    );
  }

  _setPoints(n) {
    this.points = n;
    this.el.dataset.points = String(n);
  }

  /** Fit the plot to its box (after the panel became visible or the page resized). */
  resize() {
    if (this.plotted && Plotly && this.plot.offsetWidth > 0) Plotly.Plots.resize(this.plot);
  }

  destroy() {
    if (this.plotted && Plotly) Plotly.purge(this.plot);
    this.plotted = false;
  }
}
