// @vitest-environment happy-dom
import { afterEach, describe, expect, it, vi } from "vitest";

// No plotly under a DOM emulation: charts still compute their figures and data-points.
vi.mock("plotly.js-cartesian-dist-min", () => ({ default: null }));

const { renderStandalone } = await import("../src/widget.js");
const { epochTraces, runColor, seriesTraces, SPECS } = await import("../src/compare.js");

const frame = () => new Promise((r) => setTimeout(r, 40));
const EVIL = '<img src=x onerror="window.__pwned=1">';

function run(name, n, { loss = 1.4, findings = [], epochs = [] } = {}) {
  const step = Array.from({ length: n }, (_, i) => i);
  return {
    name,
    status: "done",
    steps: n,
    model: `Sequential · ${EVIL}`,
    series: {
      step,
      loss: step.map((i) => loss - i / (10 * n)),
      grad_norm: step.map((i) => (i === 3 ? null : 0.5)),
      top_share: step.map(() => 0.25),
    },
    epochs,
    findings,
  };
}

const FINDING = {
  code: "single-class",
  severity: "warning",
  title: `One class ${EVIL}`,
  evidence: "e",
  explanation: "x",
  fix: "y",
  steps: [2, 5],
  panel: "predictions",
  cause: null,
  status: "live",
};

afterEach(() => {
  document.body.replaceChildren();
});

describe("compare traces", () => {
  it("draws one line per run in the run's colour, nulls kept as gaps", () => {
    const traces = seriesTraces([run("a", 5), run("b", 3)], "grad_norm");
    expect(traces.map((t) => t.x.length)).toEqual([5, 3]);
    expect(traces[0].y[3]).toBeNull();
    expect(traces[1].line.color).toBe(runColor(1));
    expect(runColor(0)).not.toBe(runColor(1));
  });

  it("puts epoch values at their step, validation solid and train dotted", () => {
    const epochs = [
      { epoch: 0, steps: 10, loss: 1.2, val_loss: 1.3, accuracy: 0.5 },
      { epoch: 1, steps: 20, loss: 1.0, val_loss: 1.1, accuracy: 0.6 },
    ];
    const traces = epochTraces([run("a", 20, { epochs })], (keys) => keys.filter((k) => k.includes("loss")));
    expect(traces.map((t) => t.name)).toEqual(["a: loss", "a: val_loss"]);
    expect(traces[0].x).toEqual([10, 20]);
    expect(traces[0].line.dash).toBe("dot");
    expect(traces[1].line.dash).toBe("solid");
    const metrics = SPECS.find((s) => s.name === "epoch_metrics").build({ runs: [run("a", 20, { epochs })] });
    expect(metrics.traces.map((t) => t.name)).toEqual(["a: accuracy"]);
  });
});

describe("compare view", () => {
  it("overlays runs, groups findings by run and keeps run text as text", async () => {
    const el = document.createElement("div");
    document.body.append(el);
    const runs = [run(`first ${EVIL}`, 40, { findings: [FINDING] }), run("second", 25)];
    const cleanup = renderStandalone(el, { kind: "compare", runs, title: `cmp ${EVIL}` });
    await frame();
    const root = el.querySelector(".bertlab-dashboard.bertlab-compare");
    expect(root.dataset.runs).toBe("2");
    expect(el.querySelector("img")).toBeNull();
    expect(el.querySelector(".bertlab-title").textContent).toBe(`cmp ${EVIL}`);
    for (const name of ["loss", "grad_norm", "top_share"]) {
      expect(el.querySelector(`.bertlab-chart[data-chart="${name}"]`).dataset.points).toBe("40");
    }
    expect(el.querySelector('[data-role="run-steps"][data-run="1"]').textContent).toBe("25");
    const groups = el.querySelectorAll(".bertlab-compare-group");
    expect(groups.length).toBe(2);
    expect(groups[0].querySelector(".bertlab-sidebar-title").textContent).toBe(`first ${EVIL}`);
    expect(groups[0].querySelectorAll(".bertlab-finding").length).toBe(1);
    expect(groups[1].querySelectorAll(".bertlab-finding").length).toBe(0);
    // a growing run: new trait value, charts redrawn
    cleanup.model.set("runs", [runs[0], run("second", 60)]);
    await frame();
    expect(el.querySelector('[data-role="run-steps"][data-run="1"]').textContent).toBe("60");
    groups[0].querySelector(".bertlab-finding").click();
    await frame();
    const detail = groups[0].querySelector(".bertlab-finding-detail");
    expect(detail && !detail.hidden).toBe(true);
    expect(groups[1].querySelector(".bertlab-finding-detail:not([hidden])")).toBeNull();
    cleanup();
  });

  it("goes quiet after a finding is selected (no redraw every frame)", async () => {
    const el = document.createElement("div");
    document.body.append(el);
    const runs = [run("a", 40, { findings: [FINDING] })];
    const cleanup = renderStandalone(el, { kind: "compare", runs, title: "cmp" });
    await frame();
    el.querySelector(".bertlab-finding").click();
    await frame();
    const chart = el.querySelector('.bertlab-chart[data-chart="loss"]');
    const seen = new Set();
    const observer = new MutationObserver(() => seen.add("changed"));
    observer.observe(el, { subtree: true, childList: true, attributes: true });
    await frame();
    await frame();
    observer.disconnect();
    expect(seen.size).toBe(0);
    expect(chart.isConnected).toBe(true);
    cleanup();
  });
});
