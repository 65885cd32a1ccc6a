import { describe, expect, it } from "vitest";
import { RunState } from "../src/state.js";
import { encode, makeMeta, makeRows, widthOf } from "./fixtures.js";

function running(meta = makeMeta()) {
  const s = new RunState();
  s.handleMessage({ type: "meta", meta });
  return s;
}
const steps = (meta, start, n, opts) => ({
  content: { type: "steps", start, stop: start + n, columns: widthOf(meta) },
  buffers: [new DataView(encode(makeRows(meta, start, n, opts)))],
});

describe("RunState messages", () => {
  it("appends step deltas and counts steps from the step column", () => {
    const meta = makeMeta();
    const s = running(meta);
    for (const start of [0, 10, 20]) {
      const m = steps(meta, start, 10);
      s.handleMessage(m.content, m.buffers);
    }
    expect(s.store.length).toBe(30);
    expect(s.steps).toBe(30);
    expect(s.store.column("loss")[0]).toBeCloseTo(2);
  });

  it("drops rows already held when a delta overlaps the cursor", () => {
    const meta = makeMeta();
    const s = running(meta);
    let m = steps(meta, 0, 10);
    s.handleMessage(m.content, m.buffers);
    m = steps(meta, 5, 10);
    s.handleMessage(m.content, m.buffers);
    expect(s.store.length).toBe(15);
    expect(Array.from(s.store.column("step")).slice(9, 11)).toEqual([9, 10]);
  });

  it("a replayed stream does not duplicate rows (the cursor never moves back)", () => {
    const meta = makeMeta();
    const s = running(meta);
    for (const pass of [1, 2]) {
      for (const start of [0, 10, 20]) {
        const m = steps(meta, start, 10);
        s.handleMessage(m.content, m.buffers);
      }
      expect(s.store.length, `pass ${pass}`).toBe(30);
    }
  });

  it("ignores a delta whose width does not match the layout", () => {
    const meta = makeMeta();
    const s = running(meta);
    s.handleMessage({ type: "steps", start: 0, stop: 1, columns: 3 }, [new Float32Array(3).buffer]);
    expect(s.store.length).toBe(0);
  });

  it("a snapshot message replaces the rows; later deltas continue from its cursor", () => {
    const meta = makeMeta();
    const s = running(meta);
    let m = steps(meta, 0, 5);
    s.handleMessage(m.content, m.buffers);
    s.handleMessage({ type: "snapshot", rows: 50, cursor: 50 }, [encode(makeRows(meta, 0, 50))]);
    expect(s.store.length).toBe(50);
    m = steps(meta, 50, 5);
    s.handleMessage(m.content, m.buffers);
    expect(s.steps).toBe(55);
  });

  it("takes epochs, findings and status", () => {
    const s = running();
    s.handleMessage({ type: "epoch", record: { epoch: 0, steps: 10, loss: 1 } });
    s.handleMessage({ type: "epoch", record: { epoch: 0, steps: 10, loss: 0.9 } });
    s.handleMessage({ type: "findings", findings: [{ code: "nan-loss", severity: "error" }] });
    s.handleMessage({ type: "status", status: "running", steps: 12, epoch: 0 });
    expect(s.epochs).toEqual([{ epoch: 0, steps: 10, loss: 0.9 }]);
    expect(s.findings).toHaveLength(1);
    expect(s.status).toBe("running");
    expect(s.steps).toBe(12);
  });

  it("a new layout starts an empty store", () => {
    const s = running(makeMeta({ classes: 4 }));
    const m = steps(makeMeta({ classes: 4 }), 0, 5);
    s.handleMessage(m.content, m.buffers);
    s.handleMessage({ type: "meta", meta: makeMeta({ classes: 4 }) });
    expect(s.store.length).toBe(5);
    s.handleMessage({ type: "meta", meta: makeMeta({ classes: 3 }) });
    expect(s.store.length).toBe(0);
  });
});

describe("snapshot trait", () => {
  /** A fake model holding traits. */
  const model = (traits) => ({ get: (k) => traits[k] });

  it("loads a reopened run from the traits", () => {
    const meta = makeMeta();
    const s = new RunState();
    s.loadTraits(model({ meta, snapshot: new DataView(encode(makeRows(meta, 0, 40))), snapshot_rows: 40, status: "done", title: "t", epochs: [{ epoch: 0, steps: 40 }], findings: [] }));
    expect(s.store.length).toBe(40);
    expect(s.steps).toBe(40);
    expect(s.status).toBe("done");
    expect(s.title).toBe("t");
  });

  it("keeps finer streamed rows over a coarser snapshot of the same steps", () => {
    const meta = makeMeta();
    const s = running(meta);
    const m = steps(meta, 0, 100);
    s.handleMessage(m.content, m.buffers);
    // a downsampled snapshot: 10 rows, the last one is step 99
    const coarse = makeRows(meta, 0, 100).filter((_, i) => i % 10 === 9);
    s.offerSnapshot(encode(coarse), coarse.length);
    expect(s.store.length).toBe(100);
    // one covering more steps replaces them
    const more = makeRows(meta, 0, 120).filter((_, i) => i % 10 === 9);
    s.offerSnapshot(encode(more), more.length);
    expect(s.store.length).toBe(12);
    expect(s.steps).toBe(120);
  });

  it("after a trait load, deltas skip the steps the snapshot covers", () => {
    const meta = makeMeta();
    const s = new RunState();
    s.loadTraits(model({ meta, snapshot: encode(makeRows(meta, 0, 30)), snapshot_rows: 30 }));
    const m = steps(meta, 20, 20);
    s.handleMessage(m.content, m.buffers);
    expect(s.store.length).toBe(40);
    expect(s.steps).toBe(40);
  });
});

describe("verdict", () => {
  it("comes with the findings message, from the trait, and survives a findings update without one", () => {
    const s = new RunState();
    s.handleMessage({ type: "findings", findings: [{ code: "x" }], verdict: "Root cause: x" });
    expect(s.verdict).toBe("Root cause: x");
    s.setFindings([]);
    expect(s.verdict).toBe("Root cause: x");
    const before = s.versions.findings;
    s.setVerdict("The run looks healthy");
    expect(s.verdict).toBe("The run looks healthy");
    expect(s.versions.findings).toBe(before + 1);
  });
});
