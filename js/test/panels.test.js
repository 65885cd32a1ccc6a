import { describe, expect, it } from "vitest";
import { countPoints, plotlyText } from "../src/chart.js";
import { makeContext } from "../src/context.js";
import { dataSpecs } from "../src/panels/data.js";
import { buildUpdateSize, gradientSpecs, UPDATE_GUIDES, updateSeries } from "../src/panels/gradients.js";
import { outputSpecs, probabilityVerdict } from "../src/panels/outputs.js";
import { buildLoss, lossSeries, overviewSpecs } from "../src/panels/overview.js";
import { buildConfusion, buildWindow, predictionSpecs, recentCounts } from "../src/panels/predictions.js";
import { RunState } from "../src/state.js";
import { encode, makeMeta, makeRows } from "./fixtures.js";

const ALL = () => [...overviewSpecs(), ...gradientSpecs(), ...outputSpecs(), ...predictionSpecs(), ...dataSpecs()];

function stateWith(meta, n, opts) {
  const s = new RunState();
  s.setMeta(meta);
  if (n) s.replaceSteps(encode(makeRows(meta, 0, n, opts)), n);
  return s;
}

describe("chart builders", () => {
  it("every chart builds from a full run, or says why not", () => {
    const meta = makeMeta({ lenBins: 4 });
    const s = stateWith(meta, 200, { nanAt: [50] });
    s.setEpochs([{ epoch: 0, steps: 100, loss: 1, val_loss: 1.1, accuracy: 0.5, val_accuracy: 0.4, val_confusion: [[1, 2, 0, 0], [0, 3, 0, 0], [0, 0, 4, 0], [0, 0, 0, 5]] }]);
    const ctx = makeContext(s);
    for (const spec of ALL()) {
      const fig = spec.build(ctx);
      expect(fig.empty, spec.name).toBeUndefined();
      expect(fig.traces.length, spec.name).toBeGreaterThan(0);
      expect(fig.layout, spec.name).toBeTruthy();
    }
  });

  it("charts of channels a run lacks say 'not recorded' instead of failing", () => {
    const meta = makeMeta({ classes: 0, task: "regression" });
    meta.prob_mode = "none";
    const s = stateWith(meta, 20);
    const ctx = makeContext(s);
    for (const name of ["pred_window", "confusion", "pred_steps", "labels", "len_hist"]) {
      const spec = ALL().find((x) => x.name === name);
      expect(spec.build(ctx).empty, name).toMatch(/not recorded|regression|no /);
    }
    expect(probabilityVerdict(ctx).state).toBe("info");
  });

  it("a run with no rows yet draws nothing and does not throw", () => {
    const ctx = makeContext(stateWith(makeMeta(), 0));
    for (const spec of ALL()) expect(() => spec.build(ctx)).not.toThrow();
    expect(makeContext(new RunState()).col("loss")).toBeNull();
  });

  it("marks a NaN loss and extends consistently with a full build", () => {
    const s = stateWith(makeMeta(), 100, { nanAt: [42] });
    const ctx = makeContext(s);
    const fig = buildLoss(ctx);
    expect(fig.traces[2].x).toEqual([42]);
    expect(countPoints(fig.traces[0])).toBe(100);
    const tail = lossSeries(ctx, 90, 100);
    expect(tail[1].y).toEqual(fig.traces[1].y.slice(90));
  });

  it("update size: slowest, median and fastest moving layer per step, with the rules' levels", () => {
    const meta = makeMeta({ layers: 4 });
    const ctx = makeContext(stateWith(meta, 30));
    const [hi, mid, lo] = updateSeries(ctx, 0, 30);
    // layers 1..3 move by 1e-4, 2e-4, 3e-4; layer 0 does not move and is left out
    expect(hi.y[0]).toBeCloseTo(3e-4, 9);
    expect(mid.y[0]).toBeCloseTo(2e-4, 9);
    expect(lo.y[0]).toBeCloseTo(1e-4, 9);
    const fig = buildUpdateSize(ctx);
    expect(fig.traces.map((t) => t.name).slice(3)).toEqual(UPDATE_GUIDES.map(([, name]) => name));
    expect(fig.traces[3].y).toEqual([2e-3, 2e-3]);
    expect(fig.layout.yaxis.type).toBe("log");
    const none = makeMeta();
    none.channels = none.channels.filter(([name]) => name !== "update_ratio");
    expect(buildUpdateSize(makeContext(stateWith(none, 5))).empty).toMatch(/not recorded/);
  });

  it("recent window: predicted vs label shares per class", () => {
    const s = stateWith(makeMeta(), 200);
    const r = recentCounts(makeContext(s), 100);
    expect(r.pred).toEqual([1, 0, 0, 0]);
    expect(r.label).toEqual([0.25, 0.25, 0.25, 0.25]);
    expect(r.steps).toBe(100);
  });

  it("class names reach plotly escaped, not as markup", () => {
    const meta = makeMeta();
    meta.class_names = ["<b>bold</b>", "a&b", "c", "d"];
    const s = stateWith(meta, 10);
    const fig = buildWindow(makeContext(s));
    expect(fig.traces[0].x[0]).toBe("&lt;b&gt;bold&lt;/b&gt;");
    expect(plotlyText("a&b")).toBe("a&amp;b");
  });

  it("confusion matrix: flat list reshaped, counts as text, row shares as colour", () => {
    const s = stateWith(makeMeta({ classes: 2 }), 10);
    s.setEpochs([{ epoch: 3, steps: 10, val_confusion: [8, 2, 1, 9] }]);
    const fig = buildConfusion(makeContext(s));
    expect(fig.traces[0].text).toEqual([["8", "2"], ["1", "9"]]);
    expect(fig.traces[0].z).toEqual([[0.8, 0.2], [0.1, 0.9]]);
  });

  it("highlight shades the finding's steps on step-axis charts", () => {
    const s = stateWith(makeMeta(), 50);
    const ctx = makeContext(s, { highlight: { code: "x", panel: "overview", steps: [10, 20] } });
    const shapes = buildLoss(ctx).layout.shapes;
    expect(shapes).toHaveLength(1);
    expect([shapes[0].x0, shapes[0].x1]).toEqual([9.5, 20.5]);
  });

  it("outputs verdict: logits with a softmax loss are fine", () => {
    const ctx = makeContext(stateWith(makeMeta(), 30));
    expect(probabilityVerdict(ctx)).toMatchObject({ state: "ok" });
  });
});

describe("multi-label", () => {
  it("reads predicted vs true positive rates per label and per-label validation metrics", () => {
    const meta = makeMeta({ classes: 4, task: "multilabel" });
    meta.prob_mode = "sigmoid";
    const s = stateWith(meta, 100);
    s.setEpochs([{ epoch: 0, steps: 100, val_precision: [1, 0.5, null, 0.2], val_recall: [0.5, 0.5, 0.1, 0.9], val_f1: [0.6, 0.5, 0, 0.3] }]);
    const ctx = makeContext(s);
    const r = recentCounts(ctx, 100);
    expect(r.rates).toBe(true);
    expect(r.pred).toEqual([1, 0, 0, 0]); // 8 of 8 rows predicted positive for label 0
    const fig = buildConfusion(ctx);
    expect(fig.traces.map((t) => t.name)).toEqual(["precision", "recall", "f1"]);
    expect(fig.traces[0].y).toEqual([1, 0.5, null, 0.2]);
  });
});

describe("unshare", () => {
  it("copies arrays shared between traces (extendTraces appends in place)", async () => {
    const { unshare } = await import("../src/chart.js");
    const x = [1, 2];
    const traces = unshare([{ x, y: [1, 2] }, { x, y: [3, 4] }]);
    expect(traces[0].x).not.toBe(traces[1].x);
    expect(traces[1].x).toEqual([1, 2]);
  });
});

describe("token-length bins", () => {
  it("labels bins from fractional len_edges", async () => {
    const { lengthBins } = await import("../src/panels/data.js");
    const meta = makeMeta({ lenBins: 2 });
    meta.len_edges = [0, 6.25, 12.5];
    expect(lengthBins(makeContext(stateWith(meta, 1)), 2)).toEqual(["0–6.3", "6.3–12.5"]);
  });
});

describe("mask evidence", () => {
  it("the shares chart carries the share of pad positions the mask attends (missing-attention-mask)", () => {
    const meta = makeMeta({ lenBins: 4 });
    const ctx = makeContext(stateWith(meta, 50));
    const spec = dataSpecs().find((s) => s.name === "shares");
    const fig = spec.build(ctx);
    const names = fig.traces.map((t) => t.name);
    const recorded = meta.channels?.some?.((c) => (Array.isArray(c) ? c[0] : c?.name) === "mask_pad_share");
    expect(names).toContain(recorded ? "pad positions the mask attends" : "pad positions the mask attends: not recorded");
    expect(spec.title).toContain("mask");
  });
});
