/**
 * Outputs panel: what the model emits. A badge says whether the raw outputs already look like
 * probabilities and whether that matches how the loss reads them (the classic double-softmax
 * or missing-from_logits mistake); the output histogram over steps; max-probability and
 * entropy of the probabilities the loss sees; the raw output range.
 */

import { baseLayout, COLORS } from "../chart.js";
import { Panel } from "../panel.js";
import { bucketColumns, normalizeColumns, recentMean, slice } from "../series.js";
import { HEATMAP_COLUMNS } from "./gradients.js";
import { MARKER_AXIS } from "./overview.js";

/**
 * Read the latest output facts: `{state: "ok"|"warn"|"info", text}`.
 * Probabilities: every entry in [0, 1] and (single-label) rows summing to 1.
 * @param {object} ctx
 */
export function probabilityVerdict(ctx) {
  const mode = ctx.meta.prob_mode;
  if (mode === "none" || ctx.task === "regression") return { state: "info", text: "Regression outputs: no probabilities to check." };
  const unit = ctx.col("out_unit_share");
  const dev = ctx.col("out_rowsum_dev");
  if (!unit || !ctx.n) return { state: "info", text: "Output facts not recorded yet." };
  const share = recentMean(unit, 20);
  const rowDev = dev ? recentMean(dev, 20) : NaN;
  const single = ctx.task === "multiclass" && (ctx.meta.n_classes ?? 2) > 1;
  const inUnit = share >= 0.999;
  const looksProb = inUnit && (!single || rowDev < 1e-3);
  const facts = `${(share * 100).toFixed(1)}% of outputs in [0, 1]` + (single && Number.isFinite(rowDev) ? `, mean |row sum − 1| = ${rowDev.toPrecision(2)}` : "");
  if (mode === "identity") {
    return looksProb
      ? { state: "ok", text: `Outputs are probabilities, as the loss expects (${facts}).` }
      : { state: "warn", text: `The loss reads the outputs as probabilities, but they do not look like probabilities (${facts}).` };
  }
  const squash = mode === "sigmoid" ? "sigmoid" : "softmax";
  return looksProb
    ? { state: "warn", text: `Outputs already look like probabilities, yet the loss applies ${squash} again (from_logits=True) (${facts}).` }
    : { state: "ok", text: `Outputs are logits; the loss applies ${squash} (${facts}).` };
}

/** A text block (not a chart) holding the verdict; `.bertlab-badge[data-state]`. */
export class VerdictBadge {
  constructor(doc = globalThis.document) {
    this.el = doc.createElement("div");
    this.el.className = "bertlab-badge bertlab-wide";
    this.el.dataset.role = "prob-verdict";
    this.text = null;
  }

  update(ctx) {
    const v = probabilityVerdict(ctx);
    if (v.text === this.text) return;
    this.text = v.text;
    this.el.dataset.state = v.state;
    this.el.textContent = v.text;
  }
}

/** Bin centres of out_hist from meta.hist_edges (numeric y), else the bin labels. */
export function binAxis(ctx, bins) {
  const e = ctx.meta.hist_edges;
  if (Array.isArray(e) && e.length === bins + 1) return { y: e.slice(1).map((b, i) => (b + e[i]) / 2), numeric: true };
  return { y: ctx.labels("out_hist"), numeric: false };
}

export function buildHistogram(ctx) {
  const cols = ctx.vec("out_hist");
  if (!cols) return { empty: "output histogram not recorded" };
  if (!ctx.n) return { empty: "no step yet" };
  const { x, z } = bucketColumns(ctx.col("step"), cols, HEATMAP_COLUMNS);
  const { y, numeric } = binAxis(ctx, cols.length);
  const traces = [
    {
      type: "heatmap",
      x,
      y,
      z: normalizeColumns(z),
      colorscale: "Viridis",
      zmin: 0,
      colorbar: { title: { text: "share", side: "right" }, thickness: 10, len: 0.9 },
      hovertemplate: "output ≈ %{y}<br>step %{x:.0f}<br>share %{z:.3f}<extra></extra>",
      hoverongaps: false,
    },
  ];
  const identity = ctx.meta.prob_mode === "identity";
  const layout = baseLayout(ctx, { ytitle: identity ? "output (probability)" : "output (logit)", legend: false });
  if (!numeric) layout.yaxis.type = "category";
  return { traces, layout };
}

/** Rows from..to: mean max-probability and mean entropy. */
export function probSeries(ctx, from, to) {
  const x = slice(ctx.col("step"), from, to);
  return [
    { x, y: slice(ctx.col("prob_max"), from, to) },
    { x, y: ctx.col("prob_entropy") ? slice(ctx.col("prob_entropy"), from, to) : x.map(() => null) },
  ];
}

export function buildProbs(ctx) {
  if (!ctx.col("prob_max")) return { empty: "probabilities not recorded" };
  if (ctx.task === "regression") return { empty: "not recorded for regression" };
  const [pmax, ent] = probSeries(ctx, 0, ctx.n);
  const traces = [
    { ...pmax, type: "scatter", mode: "lines", name: "mean max prob", line: { color: COLORS.loss, width: 1.5 } },
    { ...ent, type: "scatter", mode: "lines", name: "mean entropy (nats)", yaxis: "y2", line: { color: COLORS.trend, width: 1.5 } },
  ];
  const layout = baseLayout(ctx, { ytitle: "max prob" });
  layout.yaxis.range = [0, 1.02];
  layout.yaxis2 = {
    overlaying: "y",
    side: "right",
    title: { text: "entropy" },
    rangemode: "tozero",
    tickmode: "auto",
    nticks: 4,
    showgrid: false,
    automargin: true,
  };
  layout.margin = { ...layout.margin, r: 40 };
  const c = Number(ctx.meta.n_classes);
  if (ctx.task === "multiclass" && c > 1) {
    const chance = { type: "line", xref: "paper", x0: 0, x1: 1, line: { width: 1, dash: "dot" } };
    layout.shapes.push({ ...chance, yref: "y", y0: 1 / c, y1: 1 / c, line: { ...chance.line, color: COLORS.loss } });
    layout.shapes.push({ ...chance, yref: "y2", y0: Math.log(c), y1: Math.log(c), line: { ...chance.line, color: COLORS.trend } });
  }
  return { traces, layout };
}

/** Rows from..to: raw output min and max, non-finite outputs marked. */
export function rangeSeries(ctx, from, to) {
  const step = ctx.col("step");
  const bad = ctx.col("out_nonfinite");
  const marks = [];
  if (bad) for (let i = from; i < to; i++) if (bad[i] > 0) marks.push(step[i]);
  const x = slice(step, from, to);
  return [
    { x, y: slice(ctx.col("out_max"), from, to) },
    { x, y: slice(ctx.col("out_min"), from, to) },
    { x: marks, y: marks.map(() => 0.96) },
  ];
}

export function buildRange(ctx) {
  if (!ctx.col("out_min") || !ctx.col("out_max")) return { empty: "output range not recorded" };
  const [hi, lo, marks] = rangeSeries(ctx, 0, ctx.n);
  const traces = [
    { ...hi, type: "scatter", mode: "lines", name: "max", line: { color: COLORS.bad, width: 1.5 } },
    { ...lo, type: "scatter", mode: "lines", name: "min", line: { color: COLORS.loss, width: 1.5 } },
    {
      ...marks,
      type: "scatter",
      mode: "markers",
      name: "non-finite output",
      yaxis: "y2",
      marker: { symbol: "x", color: COLORS.bad, size: 8 },
      showlegend: marks.x.length > 0,
    },
  ];
  const layout = baseLayout(ctx, { ytitle: "raw output" });
  layout.yaxis2 = MARKER_AXIS;
  return { traces, layout };
}

export function outputSpecs() {
  return [
    { name: "out_hist", title: "Output values over steps (share per bin)", wide: true, build: buildHistogram },
    { name: "probs", title: "Confidence: max probability and entropy (dotted: chance)", build: buildProbs, series: probSeries },
    { name: "out_range", title: "Raw output range", build: buildRange, series: rangeSeries },
  ];
}

export function createOutputsPanel(doc) {
  return new Panel("outputs", [new VerdictBadge(doc), ...outputSpecs()], doc);
}
