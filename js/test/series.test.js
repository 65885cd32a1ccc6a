import { describe, expect, it } from "vitest";
import {
  bucketColumns,
  confusionMatrix,
  epochSeries,
  log10Matrix,
  metricKeys,
  normalizeColumns,
  runningMean,
  shares,
  windowSums,
} from "../src/series.js";

describe("runningMean", () => {
  it("averages the last w values", () => {
    expect(runningMean([1, 2, 3, 4, 5], 2)).toEqual([1, 1.5, 2.5, 3.5, 4.5]);
    expect(runningMean([1, 2, 3, 4, 5], 10)).toEqual([1, 1.5, 2, 2.5, 3]);
  });

  it("skips non-finite values; null where the window has none", () => {
    expect(runningMean([NaN, NaN, 3, Infinity, 5], 2)).toEqual([null, null, 3, 3, 5]);
  });

  it("computes a suffix equal to the full computation (trace extension)", () => {
    const v = Float32Array.from({ length: 100 }, (_, i) => Math.sin(i) + (i % 7 === 0 ? NaN : 0));
    const full = runningMean(v, 9);
    const tail = runningMean(v, 9, 60, 100);
    expect(tail).toHaveLength(40);
    tail.forEach((x, i) => (x === null ? expect(full[60 + i]).toBeNull() : expect(x).toBeCloseTo(full[60 + i], 9)));
  });
});

describe("windowSums", () => {
  const steps = Float32Array.from([0, 1, 2, 3, 4, 5]);
  const a = Float32Array.from([1, 1, 1, 1, 1, 1]);
  const b = Float32Array.from([0, 2, 0, 2, 0, NaN]);

  it("sums the rows of the last N steps per class", () => {
    expect(windowSums([a, b], steps, null, 3)).toEqual({ sums: [3, 2], steps: 3 });
    expect(windowSums([a, b], steps, null, Infinity)).toEqual({ sums: [6, 4], steps: 6 }); // NaN counts as nothing
  });

  it("weights compacted rows by the steps they stand for", () => {
    // two buckets of 4 steps (means), then 2 single steps
    const s = Float32Array.from([1.5, 5.5, 8, 9]);
    const w = Float32Array.from([4, 4, 1, 1]);
    const mean = Float32Array.from([2, 3, 1, 1]);
    expect(windowSums([mean], s, w, Infinity)).toEqual({ sums: [22], steps: 10 });
    expect(windowSums([mean], s, w, 5)).toEqual({ sums: [14], steps: 6 });
  });

  it("shares normalize, and an all-zero sum stays zero", () => {
    expect(shares([1, 3])).toEqual([0.25, 0.75]);
    expect(shares([0, 0])).toEqual([0, 0]);
  });
});

describe("confusionMatrix", () => {
  it("reads nested lists (row = true, column = predicted)", () => {
    expect(confusionMatrix([[5, 1], [2, 7]])).toEqual([[5, 1], [2, 7]]);
  });

  it("reshapes a flat C*C list, with or without C", () => {
    expect(confusionMatrix([1, 2, 3, 4, 5, 6, 7, 8, 9], 3)).toEqual([[1, 2, 3], [4, 5, 6], [7, 8, 9]]);
    expect(confusionMatrix(Int32Array.from([1, 2, 3, 4]))).toEqual([[1, 2], [3, 4]]);
  });

  it("rejects shapes that are not square", () => {
    expect(confusionMatrix([1, 2, 3], 2)).toBeNull();
    expect(confusionMatrix([[1, 2]])).toBeNull();
    expect(confusionMatrix(null)).toBeNull();
  });
});

describe("heatmap helpers", () => {
  it("buckets rows into at most maxCols columns", () => {
    const x = Float32Array.from({ length: 10 }, (_, i) => i);
    const { x: bx, z } = bucketColumns(x, [x], 4);
    expect(bx).toEqual([1, 4, 7, 9]);
    expect(z[0]).toEqual([1, 4, 7, 9]);
  });

  it("log10 drops zeros and non-finite values; columns normalize to shares", () => {
    expect(log10Matrix([[100, 0, NaN, 1]])).toEqual([[2, null, null, 0]]);
    expect(normalizeColumns([[1, 0], [3, 0]])).toEqual([[0.25, 0], [0.75, 0]]);
  });
});

describe("epochs", () => {
  const epochs = [
    { epoch: 0, steps: 100, loss: 1, accuracy: 0.5, val_loss: 1.2, val_accuracy: 0.4, learning_rate: 1e-3, val_confusion: [[1]] },
    { epoch: 1, steps: 200, loss: 0.5, accuracy: 0.7, val_loss: 0.9, val_accuracy: 0.6 },
  ];
  it("series use the steps field as x", () => {
    expect(epochSeries(epochs, "val_loss")).toEqual({ x: [100, 200], y: [1.2, 0.9] });
  });
  it("metric keys: train first, no losses, no lr, no arrays", () => {
    expect(metricKeys(epochs)).toEqual(["accuracy", "val_accuracy"]);
  });
});
