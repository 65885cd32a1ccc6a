/**
 * Gradients panel: the global gradient norm (log scale) with steps that had non-finite, all-zero
 * or missing gradients marked, the per-layer norms as a layers x steps heatmap (log10 colour),
 * and the latest per-layer norms as horizontal bars, one labelled row per layer (vanishing vs
 * exploding at a glance), and the update size per step (the slowest, median and fastest layer's
 * ||dw||/||w||) against the levels the learning-rate rules judge it by. Layer names are shortened
 * on the axes (`shortenNames`), whole in the hover text; the bar chart grows with the layer count
 * so no two labels share a row.
 */

import { baseLayout, COLORS, LOG_TICKS, plotlyText } from "../chart.js";
import { shortenNames } from "../context.js";
import { Panel } from "../panel.js";
import { bucketColumns, log10Matrix, recentMean, slice } from "../series.js";
import { MARKER_AXIS } from "./overview.js";

/** Heatmap columns at most (rows are bucketed beyond that). */
export const HEATMAP_COLUMNS = 400;

const MARKS = [
  ["grad_nonfinite", "non-finite", "x", COLORS.bad, 0.96],
  ["grad_zero", "all-zero", "triangle-down", COLORS.warn, 0.88],
  ["grad_missing", "missing", "square", COLORS.accent, 0.8],
];

/** Rows from..to: the norm, then one marker trace per MARKS entry. */
export function gradSeries(ctx, from, to) {
  const step = ctx.col("step");
  const out = [{ x: slice(step, from, to), y: slice(ctx.col("grad_norm"), from, to) }];
  for (const [name, , , , level] of MARKS) {
    const col = ctx.col(name);
    const x = [];
    if (col) for (let i = from; i < to; i++) if (col[i] > 0) x.push(step[i]);
    out.push({ x, y: x.map(() => level) });
  }
  return out;
}

export function buildGradNorm(ctx) {
  if (!ctx.col("grad_norm")) return { empty: "gradient norm not recorded" };
  const [norm, ...marks] = gradSeries(ctx, 0, ctx.n);
  const traces = [
    { ...norm, type: "scatter", mode: "lines", name: "norm", line: { color: COLORS.loss, width: 1.5 } },
    ...marks.map((m, i) => ({
      ...m,
      type: "scatter",
      mode: "markers",
      name: MARKS[i][1],
      yaxis: "y2",
      marker: { symbol: MARKS[i][2], color: MARKS[i][3], size: 8 },
      hovertemplate: `step %{x}: ${MARKS[i][1]} gradient<extra></extra>`,
      showlegend: m.x.length > 0,
    })),
  ];
  const layout = baseLayout(ctx, { ytitle: "L2 norm", ylog: true });
  layout.yaxis2 = MARKER_AXIS;
  return { traces, layout };
}

/** Layers x steps heatmap of log10 per-layer gradient norms. */
export function buildLayerHeatmap(ctx) {
  const cols = ctx.vec("grad_layer_norm");
  if (!cols) return { empty: "per-layer gradient norms not recorded" };
  if (!ctx.n) return { empty: "no step yet" };
  const { x, z } = bucketColumns(ctx.col("step"), cols, HEATMAP_COLUMNS);
  const { labels, full } = layerNames(ctx);
  const traces = [
    {
      type: "heatmap",
      x,
      y: labels,
      z: log10Matrix(z),
      customdata: full.map((name) => x.map(() => name)),
      colorscale: "Viridis",
      colorbar: { title: { text: "log10", side: "right" }, thickness: 10, len: 0.9 },
      hovertemplate: "%{customdata}<br>step %{x:.0f}<br>log10 norm %{z:.2f}<extra></extra>",
      hoverongaps: false,
    },
  ];
  const layout = baseLayout(ctx, { legend: false });
  layout.yaxis = { ...layout.yaxis, type: "category", autorange: "reversed", title: { text: "" } };
  layout.margin = { ...layout.margin, l: 8 };
  return { traces, layout };
}

/** Axis labels (short, escaped), full names (escaped, for hover) and the dropped prefix. */
export function layerNames(ctx) {
  const raw = ctx.labels("grad_layer_norm");
  const { labels, prefix } = shortenNames(raw);
  return { labels: labels.map(plotlyText), full: raw.map(plotlyText), prefix };
}

/**
 * Reference levels of the update-size chart, as the rules read them: ~1e-3 of a layer's norm per
 * step is the usual rule of thumb for healthy training (fine-tuning a pretrained encoder
 * 1e-5..1e-3), below 1e-5 the weights practically do not move (rules/low_learning_rate.py
 * LOW_RATIO), above 2e-3 an encoder is being rewritten (rules/high_learning_rate.py).
 */
export const UPDATE_GUIDES = [
  [2e-3, "2e-3: an encoder rewritten, not fine-tuned", COLORS.bad],
  [1e-3, "1e-3: a healthy step", COLORS.val],
  [1e-5, "1e-5: weights practically still", COLORS.warn],
];

/** Median of a sorted array. */
const median = (v) => (v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2);

/**
 * Rows from..to: the slowest, median and fastest layer's update ratio ||dw||/||w|| per step
 * (layers that did not move, or have no weights, are left out; null when none moved).
 */
export function updateSeries(ctx, from, to) {
  const cols = ctx.vec("update_ratio") || [];
  const x = slice(ctx.col("step"), from, to);
  const lo = [];
  const mid = [];
  const hi = [];
  for (let i = from; i < to; i++) {
    const v = cols.map((c) => c[i]).filter((r) => Number.isFinite(r) && r > 0).sort((a, b) => a - b);
    lo.push(v.length ? v[0] : null);
    mid.push(v.length ? median(v) : null);
    hi.push(v.length ? v[v.length - 1] : null);
  }
  return [{ x, y: hi }, { x, y: mid }, { x, y: lo }];
}

/** The update size per step (log), with the levels the rules judge it by. */
export function buildUpdateSize(ctx) {
  if (!ctx.vec("update_ratio")) return { empty: "update size not recorded" };
  if (!ctx.n) return { empty: "no step yet" };
  const [hi, mid, lo] = updateSeries(ctx, 0, ctx.n);
  if (!mid.y.some((v) => v !== null)) return { empty: "no layer has moved yet" };
  const line = (t, name, color, width, dash) => ({
    ...t,
    type: "scatter",
    mode: "lines",
    name,
    line: { color, width, dash },
    connectgaps: false,
    hovertemplate: `step %{x}: ${name} %{y:.2g}<extra></extra>`,
  });
  const step = ctx.col("step");
  const span = [step[0], step[ctx.n - 1]];
  const traces = [
    line(hi, "fastest layer", COLORS.accent, 1, "solid"),
    line(mid, "median layer", COLORS.loss, 2, "solid"),
    line(lo, "slowest layer", COLORS.accent, 1, "dot"),
    // the levels: dashed lines labelled at their right end (not in the legend, which would
    // take the plot's room)
    ...UPDATE_GUIDES.map(([level, name, color]) => ({
      x: span,
      y: [level, level],
      type: "scatter",
      mode: "lines+text",
      name,
      text: ["", name],
      textposition: "top left",
      textfont: { color, size: 10 },
      line: { color, width: 1, dash: "dash" },
      hoverinfo: "skip",
      showlegend: false,
    })),
  ];
  const layout = baseLayout(ctx, { ytitle: "||Δw|| / ||w||", ylog: true });
  layout.yaxis = { ...layout.yaxis, dtick: 1, tickformat: ".0e" }; // one tick per decade
  return { traces, layout };
}

/** Pixels per layer row of the bar chart (tick font 10 px: labels never touch). */
export const BAR_ROW_PX = 15;
/** Bar chart box height besides its rows: chart title, value axis on top, margins. */
export const BAR_EXTRA_PX = 100;
const TICK_FONT = 10;

/** Mean norm of each layer over its last rows: horizontal bars on a log axis, every layer labelled. */
export function buildLatest(ctx) {
  const cols = ctx.vec("grad_layer_norm");
  if (!cols) return { empty: "per-layer gradient norms not recorded" };
  if (!ctx.n) return { empty: "no step yet" };
  const values = cols.map((c) => recentMean(c, 20));
  const { labels, full } = layerNames(ctx);
  const traces = [
    {
      type: "bar",
      orientation: "h",
      x: values.map((v) => (v > 0 ? v : null)),
      y: labels,
      customdata: full,
      marker: { color: values.map((v) => (v > 0 ? COLORS.loss : COLORS.bad)) },
      hovertemplate: "%{customdata}: %{x:.3g}<extra></extra>",
    },
  ];
  const layout = baseLayout(ctx, { xtitle: "mean norm, last 20 rows", stepAxis: false, legend: false });
  // the value axis on top: with a hundred layers the bottom of the chart is a scroll away
  layout.xaxis = { ...layout.xaxis, type: "log", side: "top", ...LOG_TICKS };
  layout.yaxis = {
    ...layout.yaxis,
    type: "category",
    autorange: "reversed",
    title: { text: "" },
    tickmode: "linear",
    tick0: 0,
    dtick: 1, // every layer its own label (the box height gives each one a row)
    tickfont: { size: TICK_FONT },
  };
  layout.margin = { ...layout.margin, l: 8, t: 8, b: 8 };
  return { traces, layout };
}

/** Bar chart box height: BAR_ROW_PX per layer (no cap: the panel scrolls), at least 195 px. */
export function layerBarsHeight(ctx) {
  const layers = ctx.store?.index.get("grad_layer_norm")?.width ?? 0;
  return Math.max(195, BAR_EXTRA_PX + BAR_ROW_PX * layers);
}

/** Heatmap box height: room for ~14 px per layer name, between 240 and 520 px. */
export function layerRowsHeight(ctx) {
  const layers = ctx.store?.index.get("grad_layer_norm")?.width ?? 0;
  return Math.max(240, Math.min(520, 90 + 14 * layers));
}

/** " · names after bert." when the layer names share a leading path. */
function afterPrefix(ctx) {
  const { prefix } = shortenNames(ctx.labels("grad_layer_norm"));
  return prefix ? ` · names after ${prefix}` : "";
}

// Bounded charts first (the panel's first screen looks alike for 3 and 300 layers), then the
// bar chart whose height grows with the layer count.
export function gradientSpecs() {
  return [
    { name: "grad_norm", title: "Global gradient norm", wide: true, build: buildGradNorm, series: gradSeries },
    {
      name: "grad_layers",
      title: (ctx) => `Per-layer gradient norm over steps (log10)${afterPrefix(ctx)}`,
      wide: true,
      tall: true,
      height: layerRowsHeight,
      build: buildLayerHeatmap,
    },
    {
      name: "update_size",
      title: "Update size per step: how far each optimizer step moves the weights",
      wide: true,
      height: () => 300,
      build: buildUpdateSize,
    },
    {
      name: "grad_latest",
      title: (ctx) => `Per-layer gradient norm now${afterPrefix(ctx)}`,
      wide: true,
      height: layerBarsHeight,
      build: buildLatest,
    },
  ];
}

export function createGradientsPanel(doc) {
  return new Panel("gradients", gradientSpecs(), doc);
}
