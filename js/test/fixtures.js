/**
 * Synthetic runs for the tests: a layout like bertlab/layout.py's (scalars, then vectors) and
 * rows with plausible values, encoded as Python would send them (float32, column-major).
 */
import { encodeRows } from "../src/protocol.js";

export const SCALARS = [
  "step", "epoch", "batch", "time", "loss", "loss_nonfinite", "lr", "batch_size",
  "grad_norm", "grad_zero", "grad_missing", "grad_nonfinite",
  "out_min", "out_max", "out_nonfinite", "out_rowsum_dev", "out_unit_share", "prob_max", "prob_entropy",
  "label_min", "label_max", "label_nonint", "label_out_of_range", "label_onehot_share", "label_multihot_share",
  "tok_min", "tok_max", "pad_share", "len_mean", "len_max", "full_share", "unk_share", "input_nonfinite",
];

/** meta as Python sends it. */
export function makeMeta({ layers = 3, classes = 4, bins = 40, task = "multiclass", lenBins = 0 } = {}) {
  const vectors = [["grad_layer_norm", layers], ["update_ratio", layers], ["out_mean", classes], ["out_hist", bins]];
  if (classes) vectors.push(["pred_count", classes], ["label_count", classes]);
  if (lenBins) vectors.push(["len_hist", lenBins]);
  const edges = Array.from({ length: bins + 1 }, (_, i) => i - bins / 2);
  return {
    channels: [...SCALARS.map((s) => [s, 1]), ...vectors],
    labels: {
      grad_layer_norm: Array.from({ length: layers }, (_, i) => `layer_${i}`),
      update_ratio: Array.from({ length: layers }, (_, i) => `layer_${i}`),
    },
    hist_edges: edges,
    len_edges: lenBins ? Array.from({ length: lenBins + 1 }, (_, i) => i * 16) : [],
    task,
    prob_mode: "softmax",
    n_classes: classes,
    class_names: classes ? Array.from({ length: classes }, (_, i) => `class ${i}`) : null,
    model: { model_class: "TestModel", loss: "sparse_categorical_crossentropy", optimizer: "Adam", learning_rate: 5e-5 },
    metrics: ["accuracy"],
  };
}

/** Width (D) of a meta's rows. */
export const widthOf = (meta) => meta.channels.reduce((a, [, w]) => a + w, 0);

/**
 * Rows for steps start..start+n: each value is a function of the step so tests can check them.
 * loss = 2 / (1 + step/50), NaN at the steps in `nanAt`.
 */
export function makeRows(meta, start, n, { nanAt = [] } = {}) {
  const rows = [];
  for (let s = start; s < start + n; s++) {
    const row = [];
    for (const [name, w] of meta.channels) {
      for (let k = 0; k < w; k++) row.push(valueOf(name, s, k, nanAt));
    }
    rows.push(row);
  }
  return rows;
}

function valueOf(name, s, k, nanAt) {
  switch (name) {
    case "step": return s;
    case "loss": return nanAt.includes(s) ? NaN : 2 / (1 + s / 50);
    case "loss_nonfinite": return nanAt.includes(s) ? 1 : 0;
    case "lr": return 5e-5;
    case "batch_size": return 8;
    case "grad_norm": return 1 + s / 100;
    case "grad_layer_norm": return (k + 1) * 0.1;
    case "update_ratio": return k === 0 ? 0 : k * 1e-4; // layer 0 does not move
    case "pred_count": return k === 0 ? 8 : 0;
    case "label_count": return k === s % 4 ? 8 : 0;
    case "len_hist": return k === 1 ? 8 : 0;
    case "out_unit_share": return 0.4;
    default: return 0;
  }
}

/** The bytes Python would send for these rows. */
export const encode = (rows) => encodeRows(rows);
