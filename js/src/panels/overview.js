/**
 * Overview panel: the per-batch loss (raw, its running mean, NaN/inf batches marked), the
 * learning rate, and the per-epoch train/validation numbers Keras reports.
 */

import { baseLayout, COLORS, plotlyText } from "../chart.js";
import { Panel } from "../panel.js";
import { epochSeries, metricKeys, runningMean, slice, xsWhere } from "../series.js";

/** Rows averaged by the loss trend line. */
export const TREND_WINDOW = 20;

const bad = (v) => !Number.isFinite(v);

/** Hidden [0, 1] axis over the plot, so markers sit at the top whatever the data range. */
export const MARKER_AXIS = { overlaying: "y", range: [0, 1], visible: false, fixedrange: true };

/** Rows from..to of the loss chart's streaming traces: raw, trend, non-finite markers. */
export function lossSeries(ctx, from, to) {
  const step = ctx.col("step");
  const loss = ctx.col("loss");
  const flag = ctx.col("loss_nonfinite");
  const x = slice(step, from, to);
  const marks = [];
  for (let i = from; i < to; i++) if (bad(loss[i]) || flag?.[i] > 0) marks.push(step[i]);
  return [
    { x, y: slice(loss, from, to) },
    { x, y: runningMean(loss, TREND_WINDOW, from, to) },
    { x: marks, y: marks.map(() => 0.96) },
  ];
}

/** The loss chart: batch loss, trend, NaN markers, and the epoch losses on top. */
export function buildLoss(ctx) {
  if (!ctx.col("loss") || !ctx.col("step")) return { empty: "loss not recorded" };
  const [raw, trend, marks] = lossSeries(ctx, 0, ctx.n);
  const trainEpoch = epochSeries(ctx.epochs, "loss");
  const valEpoch = epochSeries(ctx.epochs, "val_loss");
  const traces = [
    { ...raw, type: "scatter", mode: "lines", name: "batch loss", line: { color: COLORS.loss, width: 1 }, opacity: 0.45 },
    { ...trend, type: "scatter", mode: "lines", name: `mean of ${TREND_WINDOW}`, line: { color: COLORS.trend, width: 2 } },
    {
      ...marks,
      type: "scatter",
      mode: "markers",
      name: "NaN/inf loss",
      yaxis: "y2",
      marker: { symbol: "x", color: COLORS.bad, size: 8 },
      hovertemplate: "step %{x}: loss not finite<extra></extra>",
      showlegend: marks.x.length > 0,
    },
    {
      ...trainEpoch,
      type: "scatter",
      mode: "markers",
      name: "epoch loss",
      marker: { symbol: "diamond", size: 8, color: COLORS.loss, line: { width: 1, color: "#fff" } },
      showlegend: trainEpoch.x.length > 0,
    },
    {
      ...valEpoch,
      type: "scatter",
      mode: "lines+markers",
      name: "val loss",
      line: { color: COLORS.val, width: 2 },
      marker: { size: 7 },
      showlegend: valEpoch.x.length > 0,
    },
  ];
  const layout = baseLayout(ctx, { ytitle: "loss" });
  layout.yaxis2 = MARKER_AXIS;
  return { traces, layout };
}

/** Learning rate over steps. */
export function lrSeries(ctx, from, to) {
  return [{ x: slice(ctx.col("step"), from, to), y: slice(ctx.col("lr"), from, to) }];
}

export function buildLr(ctx) {
  const lr = ctx.col("lr");
  if (!lr || !lr.some(Number.isFinite)) return { empty: "learning rate not recorded" };
  const [s] = lrSeries(ctx, 0, ctx.n);
  const traces = [{ ...s, type: "scatter", mode: "lines", name: "lr", line: { color: COLORS.accent, width: 2 } }];
  const layout = baseLayout(ctx, { ytitle: "learning rate", legend: false });
  layout.yaxis.exponentformat = "e";
  layout.yaxis.rangemode = "tozero";
  return { traces, layout };
}

/** Train and validation metrics per epoch (Keras's logs). */
export function buildMetrics(ctx) {
  const keys = metricKeys(ctx.epochs);
  if (!keys.length) return { empty: ctx.epochs.length ? "no metrics compiled" : "no epoch finished yet" };
  const palette = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
  const base = keys.map((k) => k.replace(/^val_/, ""));
  const traces = keys.map((k, i) => {
    const { x, y } = epochSeries(ctx.epochs, k);
    const color = palette[[...new Set(base)].indexOf(base[i]) % palette.length];
    const val = k.startsWith("val_");
    return {
      x,
      y,
      type: "scatter",
      mode: "lines+markers",
      name: plotlyText(k),
      line: { color, width: 2, dash: val ? "solid" : "dot" },
      marker: { size: 7, symbol: val ? "circle" : "diamond" },
    };
  });
  const layout = baseLayout(ctx, { ytitle: "" });
  layout.xaxis.rangemode = "tozero"; // one epoch is one point: show it against the steps run
  return { traces, layout };
}

/** The panel's chart specs, in grid order. */
export function overviewSpecs() {
  return [
    { name: "loss", title: "Loss per batch", wide: true, build: buildLoss, series: lossSeries },
    { name: "lr", title: "Learning rate", build: buildLr, series: lrSeries },
    { name: "metrics", title: "Metrics per epoch (dotted: train, solid: validation)", rows: false, build: buildMetrics },
  ];
}

export function createOverviewPanel(doc) {
  return new Panel("overview", overviewSpecs(), doc);
}
