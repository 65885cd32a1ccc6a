/**
 * Predictions panel: what the model predicts vs what the labels say. Recent window as grouped
 * bars (shares per class; per-label positive rates for multi-label), predicted class shares per
 * step as a heatmap (a collapse to one class shows as one bright row), and the last epoch's
 * validation confusion matrix (or per-label precision/recall for multi-label).
 */

import { baseLayout, COLORS, plotlyText } from "../chart.js";
import { uniqueNames } from "../context.js";
import { Panel } from "../panel.js";
import { bucketColumns, confusionMatrix, normalizeColumns, shares, windowSums } from "../series.js";
import { HEATMAP_COLUMNS } from "./gradients.js";

/** Steps summed by the recent-window bars. */
export const WINDOW_STEPS = 100;

const NO_CLASSES = "not recorded (no classes: regression)";

/**
 * Predicted vs true per class over the last `windowSteps` steps: shares of rows for single-label
 * tasks, positive rates (per row of the batch) for multi-label.
 * @returns {{pred: number[], label: number[], steps: number, rates: boolean}|null}
 */
export function recentCounts(ctx, windowSteps = WINDOW_STEPS) {
  const pred = ctx.vec("pred_count");
  const label = ctx.vec("label_count");
  const step = ctx.col("step");
  if (!pred || !label || !step || !ctx.n) return null;
  const w = ctx.weights();
  const p = windowSums(pred, step, w, windowSteps);
  const l = windowSums(label, step, w, windowSteps);
  if (ctx.task === "multilabel") {
    const bs = ctx.col("batch_size");
    const rows = bs ? windowSums([bs], step, w, windowSteps).sums[0] : 0;
    const rate = (v) => v.map((s) => (rows > 0 ? s / rows : 0));
    return { pred: rate(p.sums), label: rate(l.sums), steps: p.steps, rates: true };
  }
  return { pred: shares(p.sums), label: shares(l.sums), steps: p.steps, rates: false };
}

export function buildWindow(ctx) {
  if (!ctx.vec("pred_count")) return { empty: NO_CLASSES };
  const r = recentCounts(ctx);
  if (!r) return { empty: "no step yet" };
  const names = uniqueNames(ctx.classNames()).map(plotlyText);
  const what = r.rates ? "positive rate" : "share";
  const traces = [
    { type: "bar", x: names, y: r.pred, name: "predicted", marker: { color: COLORS.pred }, hovertemplate: `%{x}: predicted ${what} %{y:.3f}<extra></extra>` },
    { type: "bar", x: names, y: r.label, name: "labels", marker: { color: COLORS.label }, hovertemplate: `%{x}: label ${what} %{y:.3f}<extra></extra>` },
  ];
  const layout = baseLayout(ctx, { stepAxis: false, xtitle: "", ytitle: `${what}, last ${Math.round(r.steps)} steps` });
  layout.barmode = "group";
  layout.bargap = 0.25;
  layout.xaxis.type = "category";
  layout.yaxis.rangemode = "tozero";
  return { traces, layout };
}

/** Per-step predicted distribution: class shares (single-label) or positive rates. */
export function buildPredSteps(ctx) {
  const pred = ctx.vec("pred_count");
  if (!pred) return { empty: NO_CLASSES };
  if (!ctx.n) return { empty: "no step yet" };
  const step = ctx.col("step");
  let cols = pred;
  const multilabel = ctx.task === "multilabel";
  if (multilabel) {
    const bs = ctx.col("batch_size");
    cols = pred.map((c) => c.map((v, i) => (bs && bs[i] > 0 ? v / bs[i] : NaN)));
  }
  const { x, z } = bucketColumns(step, cols, HEATMAP_COLUMNS);
  const traces = [
    {
      type: "heatmap",
      x,
      y: uniqueNames(ctx.classNames()).map(plotlyText),
      z: multilabel ? z : normalizeColumns(z),
      zmin: 0,
      zmax: 1,
      colorscale: "Viridis",
      colorbar: { title: { text: multilabel ? "rate" : "share", side: "right" }, thickness: 10, len: 0.9 },
      hovertemplate: "%{y}<br>step %{x:.0f}<br>%{z:.3f}<extra></extra>",
      hoverongaps: false,
    },
  ];
  const layout = baseLayout(ctx, { legend: false });
  layout.yaxis = { ...layout.yaxis, type: "category", autorange: "reversed", title: { text: "" } };
  return { traces, layout };
}

/** The latest epoch record that holds `key`, or null. */
export function lastEpochWith(epochs, key) {
  for (let i = epochs.length - 1; i >= 0; i--) if (epochs[i] && epochs[i][key] != null) return epochs[i];
  return null;
}

/**
 * The confusion heatmap: colour = share of the true class's rows (so rare classes read as well
 * as common ones), text = counts.
 */
export function buildConfusion(ctx) {
  if (ctx.task === "multilabel") return buildPerLabel(ctx);
  const rec = lastEpochWith(ctx.epochs, "val_confusion");
  if (!rec) return { empty: ctx.task === "regression" ? NO_CLASSES : "no validation confusion yet (needs validation_data and a finished epoch)" };
  const m = confusionMatrix(rec.val_confusion, Number(ctx.meta.n_classes) || undefined);
  if (!m) return { empty: "validation confusion matrix has an unexpected shape" };
  let names = ctx.classNames();
  if (names.length !== m.length) names = m.map((_, i) => String(i));
  names = uniqueNames(names).map(plotlyText);
  const share = m.map((row) => {
    const t = row.reduce((a, b) => a + b, 0);
    return row.map((v) => (t > 0 ? v / t : 0));
  });
  const trace = {
    type: "heatmap",
    x: names,
    y: names,
    z: share,
    text: m.map((row) => row.map((v) => String(Math.round(v)))),
    zmin: 0,
    zmax: 1,
    // transparent to blue: reads on light and dark backgrounds
    colorscale: [
      [0, "rgba(31,119,180,0.04)"],
      [1, "rgba(31,119,180,1)"],
    ],
    colorbar: { title: { text: "row share", side: "right" }, thickness: 10, len: 0.9 },
    hovertemplate: "true %{y}<br>predicted %{x}<br>%{text} rows (%{z:.1%})<extra></extra>",
  };
  if (m.length <= 15) {
    trace.texttemplate = "%{text}";
    trace.textfont = { size: m.length <= 6 ? 12 : 9 };
  }
  const layout = baseLayout(ctx, { stepAxis: false, xtitle: `predicted (epoch ${rec.epoch})`, ytitle: "true", legend: false });
  layout.xaxis.type = "category";
  layout.yaxis = { ...layout.yaxis, type: "category", autorange: "reversed" };
  return { traces: [trace], layout };
}

/** Multi-label: per-label validation precision/recall/F1 of the last epoch. */
export function buildPerLabel(ctx) {
  const rec = lastEpochWith(ctx.epochs, "val_recall");
  if (!rec) return { empty: "no validation metrics per label yet (needs validation_data)" };
  const n = Array.from(rec.val_recall).length;
  let names = ctx.classNames();
  if (names.length !== n) names = Array.from({ length: n }, (_, i) => String(i));
  names = uniqueNames(names).map(plotlyText);
  const colors = { val_precision: COLORS.pred, val_recall: COLORS.trend, val_f1: COLORS.val };
  const traces = Object.keys(colors)
    .filter((k) => rec[k] != null)
    .map((k) => ({
      type: "bar",
      x: names,
      y: Array.from(rec[k], (v) => (Number.isFinite(Number(v)) && v !== null ? Number(v) : null)),
      name: k.replace("val_", ""),
      marker: { color: colors[k] },
    }));
  const layout = baseLayout(ctx, { stepAxis: false, xtitle: `validation, epoch ${rec.epoch}`, ytitle: "" });
  layout.barmode = "group";
  layout.xaxis.type = "category";
  layout.yaxis.range = [0, 1.05];
  return { traces, layout };
}

export function predictionSpecs() {
  return [
    { name: "pred_window", title: `Predicted vs true, last ${WINDOW_STEPS} steps`, build: buildWindow },
    {
      name: "confusion",
      title: (ctx) =>
        ctx.task === "multilabel" ? "Validation per label" : "Validation confusion (rows: true class)",
      rows: false,
      build: buildConfusion,
    },
    { name: "pred_steps", title: "Predicted class share per step", wide: true, build: buildPredSteps },
  ];
}

export function createPredictionsPanel(doc) {
  return new Panel("predictions", predictionSpecs(), doc);
}
