/**
 * Data panel: what goes into the model. Label distribution seen so far, token lengths
 * (histogram when the sequence length is known, mean/max per step), and the shares that reveal
 * truncation (rows with no padding), padding and unknown tokens.
 */

import { baseLayout, COLORS, plotlyText } from "../chart.js";
import { uniqueNames } from "../context.js";
import { Panel } from "../panel.js";
import { shares, slice, windowSums } from "../series.js";

/** Labels seen over the whole run: shares (single-label) or positive rates (multi-label). */
export function labelTotals(ctx) {
  const label = ctx.vec("label_count");
  const step = ctx.col("step");
  if (!label || !step || !ctx.n) return null;
  const w = ctx.weights();
  const { sums, steps } = windowSums(label, step, w, Infinity);
  if (ctx.task === "multilabel") {
    const bs = ctx.col("batch_size");
    const rows = bs ? windowSums([bs], step, w, Infinity).sums[0] : 0;
    return { values: sums.map((s) => (rows > 0 ? s / rows : 0)), counts: sums, steps, rates: true };
  }
  return { values: shares(sums), counts: sums, steps, rates: false };
}

export function buildLabels(ctx) {
  if (!ctx.vec("label_count")) return { empty: "labels per class not recorded (regression)" };
  const t = labelTotals(ctx);
  if (!t) return { empty: "no step yet" };
  const names = uniqueNames(ctx.classNames()).map(plotlyText);
  const traces = [
    {
      type: "bar",
      x: names,
      y: t.values,
      customdata: t.counts.map((c) => Math.round(c)),
      marker: { color: COLORS.label },
      hovertemplate: `%{x}: %{y:.3f} (%{customdata} ${t.rates ? "positives" : "rows"})<extra></extra>`,
    },
  ];
  const layout = baseLayout(ctx, { stepAxis: false, xtitle: "", ytitle: t.rates ? "positive rate" : "share of rows", legend: false });
  layout.xaxis.type = "category";
  layout.yaxis.rangemode = "tozero";
  return { traces, layout };
}

/** An edge as a short number: 16, 6.3 (edges are seq_len * i / bins, often fractional). */
const edge = (v) => String(Math.round(Number(v) * 10) / 10);

/** Bin labels of len_hist: "lo–hi" from meta.len_edges, else meta.labels, else indices. */
export function lengthBins(ctx, bins) {
  const e = ctx.meta.len_edges;
  if (Array.isArray(e) && e.length === bins + 1) return e.slice(0, -1).map((lo, i) => `${edge(lo)}–${edge(e[i + 1])}`);
  return ctx.labels("len_hist");
}

export function buildLenHist(ctx) {
  const cols = ctx.vec("len_hist");
  if (!cols) return { empty: "token-length histogram not recorded (sequence length unknown)" };
  if (!ctx.n) return { empty: "no step yet" };
  const { sums } = windowSums(cols, ctx.col("step"), ctx.weights(), Infinity);
  const traces = [
    {
      type: "bar",
      x: lengthBins(ctx, cols.length).map(plotlyText),
      y: sums.map((v) => Math.round(v)),
      marker: { color: COLORS.accent },
      hovertemplate: "%{x} tokens: %{y} rows<extra></extra>",
    },
  ];
  const layout = baseLayout(ctx, { stepAxis: false, xtitle: "tokens per row", ytitle: "rows", legend: false });
  layout.xaxis.type = "category";
  return { traces, layout };
}

/** Rows from..to: mean and max non-padding tokens per row. */
export function lengthSeries(ctx, from, to) {
  const x = slice(ctx.col("step"), from, to);
  const max = ctx.col("len_max");
  return [{ x, y: slice(ctx.col("len_mean"), from, to) }, { x, y: max ? slice(max, from, to) : x.map(() => null) }];
}

export function buildLengths(ctx) {
  const mean = ctx.col("len_mean");
  if (!mean || !mean.some(Number.isFinite)) return { empty: "token lengths not recorded" };
  const [m, x] = lengthSeries(ctx, 0, ctx.n);
  const traces = [
    { ...m, type: "scatter", mode: "lines", name: "mean", line: { color: COLORS.loss, width: 1.5 } },
    { ...x, type: "scatter", mode: "lines", name: "max", line: { color: COLORS.trend, width: 1.5 } },
  ];
  const layout = baseLayout(ctx, { ytitle: "tokens per row" });
  layout.yaxis.rangemode = "tozero";
  return { traces, layout };
}

const SHARES = [
  ["full_share", "no padding (truncated?)", COLORS.bad],
  ["pad_share", "padding", COLORS.label],
  ["unk_share", "unknown tokens", COLORS.accent],
  // missing-attention-mask's evidence: the share of pad-id positions the mask says to attend
  ["mask_pad_share", "pad positions the mask attends", COLORS.warn],
];

/** Rows from..to: one line per SHARES entry (null where not recorded). */
export function shareSeries(ctx, from, to) {
  const x = slice(ctx.col("step"), from, to);
  return SHARES.map(([name]) => {
    const c = ctx.col(name);
    return { x, y: c ? slice(c, from, to) : x.map(() => null) };
  });
}

export function buildShares(ctx) {
  const present = SHARES.filter(([name]) => ctx.col(name)?.some(Number.isFinite));
  if (!present.length) return { empty: "padding, truncation and unknown-token shares not recorded" };
  const traces = shareSeries(ctx, 0, ctx.n).map((s, i) => {
    const [name, label, color] = SHARES[i];
    const recorded = present.some(([p]) => p === name);
    return {
      ...s,
      type: "scatter",
      mode: "lines",
      name: recorded ? label : `${label}: not recorded`,
      line: { color, width: 1.5 },
      visible: recorded ? true : "legendonly",
    };
  });
  const layout = baseLayout(ctx, { ytitle: "share" });
  layout.yaxis.range = [0, 1.02];
  return { traces, layout };
}

export function dataSpecs() {
  return [
    { name: "labels", title: "Labels seen so far", build: buildLabels },
    { name: "len_hist", title: "Token lengths (all rows so far)", build: buildLenHist },
    { name: "lengths", title: "Token length per step", build: buildLengths, series: lengthSeries },
    { name: "shares", title: "Truncation, padding, unknown tokens, mask", build: buildShares, series: shareSeries },
  ];
}

export function createDataPanel(doc) {
  return new Panel("data", dataSpecs(), doc);
}
