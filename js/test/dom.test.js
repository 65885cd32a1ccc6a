// @vitest-environment happy-dom
import { afterEach, describe, expect, it, vi } from "vitest";
import { encode, makeMeta, makeRows, widthOf } from "./fixtures.js";

// No plotly under a DOM emulation: charts still compute their figures and data-points.
vi.mock("plotly.js-cartesian-dist-min", () => ({ default: null }));

const { default: widget, renderStandalone } = await import("../src/widget.js");
const { createStandaloneModel } = await import("../src/standalone.js");
const { Sidebar } = await import("../src/sidebar.js");

const frame = () => new Promise((r) => setTimeout(r, 40));
const EVIL = '<img src=x onerror="window.__pwned=1"><b>bold</b>';

const FINDINGS = [
  {
    code: "nan-loss",
    severity: "error",
    title: `Loss became NaN ${EVIL}`,
    evidence: `loss NaN at step 42 in layer ${EVIL}`,
    explanation: `Because ${EVIL}`,
    fix: "model.compile(optimizer=Adam(1e-5))\n# <script>alert(1)</script>",
    steps: [40, 60],
    panel: "gradients",
    cause: null,
    status: "live",
  },
  { code: "old-one", severity: "info", title: "Fixed", evidence: "", explanation: "", fix: "", steps: null, panel: "data", cause: "nan-loss", status: "resolved" },
  { code: "single-class", severity: "warning", title: "One class", evidence: "e", explanation: "x", fix: "y", steps: [0, 10], panel: "predictions", cause: "nan-loss", status: "live" },
];

afterEach(() => {
  document.body.replaceChildren();
});

describe("sidebar", () => {
  it("shows finding text as text, never as HTML", () => {
    const sb = new Sidebar(document, { onSelect() {} });
    document.body.append(sb.el);
    sb.update(FINDINGS, "running");
    expect(sb.el.querySelector("img")).toBeNull();
    expect(sb.el.querySelector("b")).toBeNull();
    const item = sb.el.querySelector('.bertlab-finding[data-code="nan-loss"]');
    expect(item.dataset.severity).toBe("error");
    expect(item.dataset.status).toBe("live");
    expect(item.querySelector(".bertlab-finding-title").textContent).toBe(`Loss became NaN ${EVIL}`);
    item.click();
    const detail = sb.el.querySelector(".bertlab-finding-detail");
    expect(detail.hidden).toBe(false);
    expect(detail.querySelector("pre").textContent).toContain("<script>alert(1)</script>");
    expect(detail.querySelector("script")).toBeNull();
    expect(detail.querySelector("button.bertlab-copy")).not.toBeNull();
    expect(window.__pwned).toBeUndefined();
  });

  it("puts resolved findings last and names the cause", () => {
    const sb = new Sidebar(document, { onSelect() {} });
    sb.update(FINDINGS, "done");
    const codes = [...sb.el.querySelectorAll(".bertlab-finding")].map((e) => e.dataset.code);
    expect(codes).toEqual(["nan-loss", "single-class", "old-one"]);
    expect(sb.el.querySelector('[data-code="single-class"] .bertlab-finding-meta').textContent).toContain("caused by nan-loss");
  });
});

describe("dashboard", () => {
  function mount(state) {
    const el = document.createElement("div");
    document.body.append(el);
    const cleanup = renderStandalone(el, state);
    return { el, cleanup, root: el.querySelector(".bertlab-dashboard") };
  }

  it("follows the DOM contract and switches panel on a finding click", async () => {
    const meta = makeMeta();
    const { root, cleanup } = mount({ meta, snapshot: new Uint8Array(encode(makeRows(meta, 0, 120))), snapshot_rows: 120, findings: FINDINGS, status: "done", title: "run <1>" });
    await frame();
    expect(root.dataset.activePanel).toBe("overview");
    expect(root.dataset.status).toBe("done");
    expect(root.querySelector('[data-role="steps"]').textContent).toBe("120");
    expect(root.querySelector(".bertlab-title").textContent).toBe("run <1>");
    expect(root.querySelectorAll("button.bertlab-tab[data-panel]")).toHaveLength(5);
    expect(root.querySelectorAll(".bertlab-panel[data-panel]")).toHaveLength(5);
    expect(root.querySelector('.bertlab-chart[data-chart="loss"]').dataset.points).toBe("120");
    expect(root.querySelector('.bertlab-panel[data-panel="gradients"]').hidden).toBe(true);

    root.querySelector('.bertlab-finding[data-code="nan-loss"]').click();
    expect(root.dataset.activePanel).toBe("gradients");
    expect(root.querySelector('.bertlab-panel[data-panel="gradients"]').hidden).toBe(false);
    expect(root.querySelector('.bertlab-panel[data-panel="overview"]').hidden).toBe(true);
    expect(root.querySelector(".bertlab-finding-detail").hidden).toBe(false);
    await frame();
    expect(root.querySelector('.bertlab-chart[data-chart="grad_norm"]').dataset.points).toBe("120");

    root.querySelector('button.bertlab-tab[data-panel="data"]').click();
    expect(root.dataset.activePanel).toBe("data");
    cleanup();
    expect(document.querySelector(".bertlab-dashboard")).toBeNull();
  });

  it("grows while messages stream in, coalescing them per frame", async () => {
    const meta = makeMeta();
    const el = document.createElement("div");
    document.body.append(el);
    const model = createStandaloneModel({ status: "waiting" });
    const sends = vi.spyOn(model, "send");
    widget.initialize({ model });
    widget.render({ model, el });
    const root = el.querySelector(".bertlab-dashboard");
    model.emit({ type: "meta", meta });
    model.emit({ type: "status", status: "running", steps: 0, epoch: 0 });
    for (let start = 0; start < 50; start += 10) {
      const rows = makeRows(meta, start, 10);
      model.emit({ type: "steps", start, stop: start + 10, columns: widthOf(meta) }, [new DataView(encode(rows))]);
    }
    await frame();
    expect(root.dataset.status).toBe("running");
    expect(root.querySelector('[data-role="steps"]').textContent).toBe("50");
    expect(root.querySelector('.bertlab-chart[data-chart="loss"]').dataset.points).toBe("50");
    model.emit({ type: "steps", start: 50, stop: 60, columns: widthOf(meta) }, [new DataView(encode(makeRows(meta, 50, 10)))]);
    await frame();
    expect(root.querySelector('.bertlab-chart[data-chart="loss"]').dataset.points).toBe("60");
    // a second view of the same model shares the data
    const el2 = document.createElement("div");
    document.body.append(el2);
    widget.render({ model, el: el2 });
    await frame();
    expect(el2.querySelector('[data-role="steps"]').textContent).toBe("60");
    expect(sends).not.toHaveBeenCalled();
  });

  it("shows 'not recorded' for channels a run lacks", async () => {
    const meta = makeMeta({ classes: 0, task: "regression" });
    const { root } = mount({ meta, snapshot: encode(makeRows(meta, 0, 10)), snapshot_rows: 10 });
    root.querySelector('button.bertlab-tab[data-panel="predictions"]').click();
    await frame();
    const chart = root.querySelector('.bertlab-chart[data-chart="pred_window"]');
    expect(chart.querySelector(".bertlab-chart-note").textContent).toMatch(/not recorded/);
    expect(chart.dataset.points).toBe("0");
  });
});

describe("header", () => {
  it("counts finished epochs, and names the running one", async () => {
    const { epochText } = await import("../src/dashboard.js");
    expect(epochText({ status: "running", epoch: 0, epochs: [] })).toBe(" · epoch 1");
    expect(epochText({ status: "done", epoch: 3, epochs: [] })).toBe(" · 3 epochs");
    expect(epochText({ status: "done", epoch: null, epochs: [{}] })).toBe(" · 1 epoch");
    expect(epochText({ status: "waiting", epoch: null, epochs: [] })).toBe("");
  });
});

describe("finding selection", () => {
  it("a second click on the selected finding goes back to its panel; × closes it", async () => {
    const meta = makeMeta();
    const el = document.createElement("div");
    document.body.append(el);
    renderStandalone(el, { meta, snapshot: encode(makeRows(meta, 0, 20)), snapshot_rows: 20, findings: FINDINGS });
    const root = el.querySelector(".bertlab-dashboard");
    const item = () => root.querySelector('.bertlab-finding[data-code="nan-loss"]');
    await frame();
    item().click();
    root.querySelector('button.bertlab-tab[data-panel="data"]').click();
    expect(root.dataset.activePanel).toBe("data");
    item().click();
    expect(root.dataset.activePanel).toBe("gradients");
    expect(root.querySelector(".bertlab-finding-detail").hidden).toBe(false);
    root.querySelector("button.bertlab-detail-close").click();
    expect(root.querySelector(".bertlab-finding-detail")).toBeNull();
    expect(item().classList.contains("bertlab-selected")).toBe(false);
  });
});
