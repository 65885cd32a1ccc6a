import { describe, expect, it } from "vitest";
import { channelIndex, decodeColumns, dropRows, maxFinite, toBytes, totalWidth } from "../src/protocol.js";

/** A column-major float32 buffer of D columns x n rows, value = 100*col + row. */
function buffer(d, n) {
  const f = new Float32Array(d * n);
  for (let j = 0; j < d; j++) for (let i = 0; i < n; i++) f[j * n + i] = 100 * j + i;
  return f.buffer;
}

describe("decodeColumns", () => {
  it("splits a column-major buffer into D columns of n rows", () => {
    const { n, cols } = decodeColumns(buffer(3, 5), 3, 5);
    expect(n).toBe(5);
    expect(cols).toHaveLength(3);
    expect(Array.from(cols[0])).toEqual([0, 1, 2, 3, 4]);
    expect(Array.from(cols[2])).toEqual([200, 201, 202, 203, 204]);
  });

  it("reads DataView, Uint8Array and ArrayBuffer alike", () => {
    const ab = buffer(2, 3);
    for (const buf of [ab, new DataView(ab), new Uint8Array(ab)]) {
      const { cols } = decodeColumns(buf, 2, 3);
      expect(Array.from(cols[1])).toEqual([100, 101, 102]);
    }
  });

  it("copies an unaligned view instead of failing", () => {
    const src = new Uint8Array(buffer(2, 2));
    const padded = new Uint8Array(src.length + 1);
    padded.set(src, 1);
    const { cols } = decodeColumns(padded.subarray(1), 2, 2);
    expect(Array.from(cols[1])).toEqual([100, 101]);
  });

  it("infers rows from the bytes when the announced count disagrees", () => {
    const { n, cols } = decodeColumns(buffer(2, 4), 2, 10);
    expect(n).toBe(4);
    expect(Array.from(cols[1])).toEqual([100, 101, 102, 103]);
  });

  it("keeps NaN and inf as data", () => {
    const f = new Float32Array([NaN, Infinity, 1, 2]);
    const { cols } = decodeColumns(f, 2, 2);
    expect(Number.isNaN(cols[0][0])).toBe(true);
    expect(cols[0][1]).toBe(Infinity);
  });

  it("decodes base64 (a bytes trait from saved widget state)", () => {
    const bytes = new Uint8Array(new Float32Array([1.5, 2.5]).buffer);
    const b64 = btoa(String.fromCharCode(...bytes));
    expect(Array.from(decodeColumns(toBytes(b64), 1, 2).cols[0])).toEqual([1.5, 2.5]);
  });
});

describe("channels", () => {
  const channels = [["step", 1], ["loss", 1], ["grad_layer_norm", 3], ["pred_count", 2]];
  it("computes offsets and the total width", () => {
    expect(totalWidth(channels)).toBe(7);
    expect(channelIndex(channels).get("grad_layer_norm")).toEqual({ offset: 2, width: 3 });
    expect(channelIndex(channels).get("pred_count")).toEqual({ offset: 5, width: 2 });
  });

  it("drops leading rows and finds the last step", () => {
    const block = dropRows(decodeColumns(buffer(1, 4), 1, 4), 3);
    expect(block.n).toBe(1);
    expect(Array.from(block.cols[0])).toEqual([3]);
    expect(maxFinite(new Float32Array([1, NaN, 7, Infinity]))).toBe(7);
  });
});
