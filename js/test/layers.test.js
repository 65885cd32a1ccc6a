import { describe, expect, it } from "vitest";
import { makeContext, MAX_LABEL, shortenNames } from "../src/context.js";
import { BAR_EXTRA_PX, buildLatest, buildLayerHeatmap, gradientSpecs, layerBarsHeight } from "../src/panels/gradients.js";
import { RunState } from "../src/state.js";
import { encode, makeMeta, makeRows } from "./fixtures.js";

const KERAS = ["sequential/embedding", "sequential/conv1d", "sequential/dense"];

/** A BERT's gradient groups as PyTorch / HF name them: 101 long names. */
function hfNames(blocks = 12, model = "bert") {
  const names = [`${model}.embeddings.word_embeddings`, `${model}.embeddings.position_embeddings`, `${model}.embeddings.LayerNorm`];
  const sub = ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense", "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm"];
  for (let b = 0; b < blocks; b++) for (const s of sub) names.push(`${model}.encoder.layer.${b}.${s}`);
  names.push(`${model}.pooler.dense`, "classifier");
  return names;
}

function ctxFor(names) {
  const meta = makeMeta({ layers: names.length });
  meta.labels.grad_layer_norm = names;
  const s = new RunState();
  s.setMeta(meta);
  s.replaceSteps(encode(makeRows(meta, 0, 30)), 30);
  return makeContext(s);
}

/** The invariant of the per-layer bar chart: each layer its own labelled row, rows tall enough. */
function checkBars(names) {
  const ctx = ctxFor(names);
  const fig = buildLatest(ctx);
  const { y, customdata } = fig.traces[0];
  const ax = fig.layout.yaxis;
  expect(y).toHaveLength(names.length);
  expect(new Set(y).size).toBe(names.length); // no two layers on one category row
  expect(customdata).toEqual(names); // full names in the hover
  expect([ax.tickmode, ax.tick0, ax.dtick]).toEqual(["linear", 0, 1]); // every row labelled
  for (const label of y) expect(label.length).toBeLessThanOrEqual(MAX_LABEL);
  const rowPx = (layerBarsHeight(ctx) - BAR_EXTRA_PX) / names.length;
  expect(rowPx).toBeGreaterThanOrEqual(ax.tickfont.size + 4); // labels never touch
  return { fig, ctx };
}

describe("layer names on the gradient charts", () => {
  it("drops the path prefix all names share (Keras)", () => {
    expect(shortenNames(KERAS)).toEqual({ labels: ["embedding", "conv1d", "dense"], prefix: "sequential/" });
    const { ctx } = checkBars(KERAS);
    expect(gradientSpecs().find((s) => s.name === "grad_latest").title(ctx)).toMatch(/names after sequential\/$/);
  });

  it("keeps a lone name whole, and only whole segments are dropped", () => {
    expect(shortenNames(["sequential/dense"]).labels).toEqual(["sequential/dense"]);
    expect(shortenNames(["dense_1", "dense_2"]).labels).toEqual(["dense_1", "dense_2"]);
    expect(shortenNames(["a.b", "a.b.c"]).labels).toEqual(["b", "b.c"]);
  });

  it("101 PyTorch / HF names: a BERT's fit whole, longer ones keep their tail; one row each", () => {
    const names = hfNames();
    const { labels, prefix } = shortenNames(names);
    expect(prefix).toBe(""); // `classifier` shares nothing
    expect(labels).toEqual(names);
    checkBars(names);
    const roberta = shortenNames(hfNames(12, "roberta.base_model")).labels;
    expect(roberta[0]).toBe("roberta.base_model.embeddings.word_embeddings");
    expect(roberta).toContain("…encoder.layer.11.attention.output.LayerNorm");
    expect(roberta.at(-1)).toBe("classifier");
    checkBars(hfNames(12, "roberta.base_model"));
    // without the classifier, `bert.` is shared and dropped
    expect(shortenNames(names.slice(0, -1)).labels[3]).toBe("encoder.layer.0.attention.self.query");
  });

  it("keeps labels distinct when tails collide, and for 250 layers", () => {
    const names = ["x.a.very_long_module_name_here.attention.output.dense", "y.a.very_long_module_name_here.attention.output.dense"];
    const { labels } = shortenNames(names, 30);
    expect(new Set(labels).size).toBe(2);
    checkBars(Array.from({ length: 250 }, (_, i) => `model.encoder.blocks.${i}.mlp.fc${i % 2}`));
    checkBars(["same", "same"]);
  });

  it("the heatmap uses the same short labels, full names in its hover", () => {
    const names = hfNames(2);
    const fig = buildLayerHeatmap(ctxFor(names));
    expect(fig.traces[0].y).toEqual(shortenNames(names).labels);
    expect(fig.traces[0].customdata[5][0]).toBe(names[5]);
    expect(fig.traces[0].hovertemplate).toContain("%{customdata}");
  });

  it("escapes names for plotly", () => {
    const fig = buildLatest(ctxFor(["m/<b>x</b>", "m/a&b"]));
    expect(fig.traces[0].y).toEqual(["&lt;b&gt;x&lt;/b&gt;", "a&amp;b"]);
  });
});
