import { describe, expect, it } from "vitest";
import { ColumnStore } from "../src/store.js";

const channels = [["step", 1], ["loss", 1], ["pred_count", 2]];
/** Columns for steps start..start+n: step, loss = step, pred_count = [step, 1]. */
function cols(start, n) {
  const step = Float32Array.from({ length: n }, (_, i) => start + i);
  return [step, step.slice(), step.slice(), new Float32Array(n).fill(1)];
}

describe("ColumnStore", () => {
  it("appends rows and exposes scalar and vector channels", () => {
    const s = new ColumnStore(channels, { maxRows: 100 });
    s.append(cols(0, 3), 3);
    s.append(cols(3, 2), 2);
    expect(s.length).toBe(5);
    expect(Array.from(s.column("step"))).toEqual([0, 1, 2, 3, 4]);
    const pc = s.column("pred_count");
    expect(pc).toHaveLength(2);
    expect(Array.from(pc[1])).toEqual([1, 1, 1, 1, 1]);
    expect(s.channelColumns("loss")).toHaveLength(1);
    expect(s.column("absent")).toBeNull();
  });

  it("never holds more than its capacity, halving by pair means", () => {
    const s = new ColumnStore(channels, { maxRows: 100 });
    for (let k = 0; k < 50; k++) s.append(cols(k * 20, 20), 20); // 1000 steps
    expect(s.length).toBeLessThanOrEqual(s.capacity);
    expect(s.capacity).toBe(100);
    expect(s.compactions).toBeGreaterThan(0);
    const step = s.column("step");
    const w = s.weights();
    // weights add up to every step appended, and each row is the mean of the steps it covers
    expect(Array.from(w).reduce((a, b) => a + b, 0)).toBe(1000);
    let first = 0;
    for (let i = 0; i < s.length; i++) {
      expect(step[i]).toBeCloseTo(first + (w[i] - 1) / 2, 3);
      first += w[i];
    }
    // increasing order is kept
    for (let i = 1; i < s.length; i++) expect(step[i]).toBeGreaterThan(step[i - 1]);
  });

  it("keeps a NaN in a compacted bucket", () => {
    const s = new ColumnStore([["loss", 1]], { maxRows: 4 });
    s.append([Float32Array.from([1, NaN, 3, 4])], 4);
    s.append([Float32Array.from([5])], 1);
    expect(s.length).toBe(3);
    const loss = s.column("loss");
    expect(Number.isNaN(loss[0])).toBe(true);
    expect(loss[1]).toBe(3.5);
    expect(loss[2]).toBe(5);
  });

  it("bounds memory by a byte budget for wide rows", () => {
    const wide = [["step", 1], ["pred_count", 999]];
    const s = new ColumnStore(wide, { maxRows: 20000, budgetBytes: 4 * 1001 * 1000 }); // 1000 columns + the weight column
    expect(s.capacity).toBe(1000);
  });

  it("replace swaps all rows and tells views to redraw", () => {
    const s = new ColumnStore(channels);
    s.append(cols(0, 10), 10);
    const mark = s.mark();
    s.append(cols(10, 5), 5);
    expect(s.since(mark)).toEqual({ full: false, from: 10 });
    s.replace(cols(0, 3), 3);
    expect(s.length).toBe(3);
    expect(s.since(mark).full).toBe(true);
  });

  it("a compaction invalidates marks; versions and listeners follow changes", () => {
    const s = new ColumnStore(channels, { maxRows: 8 });
    let calls = 0;
    const off = s.onChange(() => calls++);
    s.append(cols(0, 8), 8);
    const mark = s.mark();
    const v = s.version;
    s.append(cols(8, 1), 1);
    expect(s.since(mark).full).toBe(true);
    expect(s.sinceVersion(v)).toBe(true);
    expect(calls).toBe(2);
    off();
    s.append(cols(9, 1), 1);
    expect(calls).toBe(2);
  });

  it("accepts more rows in one append than its capacity", () => {
    const s = new ColumnStore(channels, { maxRows: 16 });
    s.append(cols(0, 100), 100);
    expect(s.length).toBeLessThanOrEqual(16);
    expect(Array.from(s.weights()).reduce((a, b) => a + b, 0)).toBe(100);
    expect(s.column("step")[s.length - 1]).toBeGreaterThan(90);
  });
});
