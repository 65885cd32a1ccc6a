/**
 * The read-only view of a run that chart specs build from: the step store's columns by name,
 * meta with sensible defaults (labels, class names), epochs, the highlighted finding and the
 * page theme. Built once per frame by the dashboard; pure, so specs are testable with a
 * context made from a RunState in a test.
 */

/**
 * @param {import("./state.js").RunState} state
 * @param {{highlight?: {code: string, panel: string, steps: number[]}|null,
 *   theme?: object}} [view]
 */
export function makeContext(state, view = {}) {
  const store = state.store;
  const meta = state.meta || {};
  const highlight = view.highlight || null;
  const theme = view.theme || null;
  const hl = highlight?.steps ? highlight.steps.join("-") : "";
  return {
    store,
    meta,
    epochs: state.epochs || [],
    findings: state.findings || [],
    highlight,
    theme,
    /** Changes when anything but the step rows changes: charts redraw fully then. */
    key: `${state.versions.meta}|${state.versions.epochs}|${hl}|${theme?.fg || ""}`,
    /** Rows held. */
    get n() {
      return store ? store.length : 0;
    },
    task: meta.task || "multiclass",
    /** A scalar column (Float32Array view) or null when not recorded. */
    col(name) {
      if (!store || !store.has(name)) return null;
      const c = store.column(name);
      return Array.isArray(c) ? c[0] : c;
    },
    /** A vector channel's columns, or null when not recorded. */
    vec(name) {
      return store && store.has(name) ? store.channelColumns(name) : null;
    },
    /** Steps each row stands for. */
    weights() {
      return store ? store.weights() : new Float32Array(0);
    },
    /** Labels of a vector channel's components: meta.labels, else their indices. */
    labels(name) {
      const width = store?.index.get(name)?.width ?? 0;
      const given = meta.labels?.[name];
      if (Array.isArray(given) && given.length === width) return given.map(String);
      return Array.from({ length: width }, (_, i) => String(i));
    },
    /** Class (or label) names for pred_count/label_count: meta.class_names when it fits. */
    classNames() {
      const width = store?.index.get("pred_count")?.width ?? store?.index.get("label_count")?.width ?? 0;
      const names = meta.class_names;
      if (Array.isArray(names) && names.length === width) return names.map(String);
      return this.labels(store?.has("pred_count") ? "pred_count" : "label_count");
    },
  };
}

/**
 * Make names unique for a category axis (two layers may share a name; plotly would merge
 * them into one row).
 * @param {string[]} names
 */
export function uniqueNames(names) {
  const seen = new Map();
  return names.map((n) => {
    const k = seen.get(n) || 0;
    seen.set(n, k + 1);
    return k ? `${n} (${k + 1})` : n;
  });
}

/** Longest axis label of a layer name (longer names keep their last path segments). */
export const MAX_LABEL = 48; // a BERT's longest, bert.encoder.layer.11.attention.output.LayerNorm

/**
 * Short, unique labels for layer names (`bert.encoder.layer.3.attention.output.dense`): the
 * leading path segments (split after `.`, `/` or `:`) that every name shares are dropped, and a
 * name still longer than `max` keeps its last segments behind "…" (the layer index and the
 * sublayer are at the end). The full names go in the hover text.
 * @param {string[]} names
 * @returns {{labels: string[], prefix: string}} labels in the same order, and what was dropped
 */
export function shortenNames(names, max = MAX_LABEL) {
  const parts = names.map((n) => String(n).split(/(?<=[./:])/));
  let k = 0;
  if (parts.length > 1) {
    const keep = Math.min(...parts.map((p) => p.length)) - 1; // every name keeps a segment
    while (k < keep && parts.every((p) => p[k] === parts[0][k])) k++;
  }
  const labels = parts.map((p) => {
    const rest = p.slice(k);
    const whole = rest.join("");
    if (whole.length <= max) return whole;
    let tail = "";
    for (let i = rest.length - 1; i >= 0 && tail.length + rest[i].length < max; i--) tail = rest[i] + tail;
    return `…${tail || whole.slice(1 - max)}`;
  });
  return { labels: uniqueNames(labels), prefix: k ? parts[0].slice(0, k).join("") : "" };
}
