/**
 * Pure number crunching behind the panels: running means, window sums, heatmap bucketing,
 * confusion-matrix reshaping, epoch series. No DOM, no plotly: unit-tested directly.
 *
 * Conventions: inputs are typed-array views from the store (`ArrayLike<number>`), a range is
 * `from..to` (rows, `to` exclusive), outputs are plain arrays where a non-finite value becomes
 * `null` (plotly draws a gap there).
 */

/** @param {number} v */
export const finiteOrNull = (v) => (Number.isFinite(v) ? v : null);

/**
 * Rows `from..to` of a column as a plain array (non-finite -> null).
 * @param {ArrayLike<number>} col
 */
export function slice(col, from = 0, to = col.length) {
  const out = new Array(Math.max(0, to - from));
  for (let i = from; i < to; i++) out[i - from] = finiteOrNull(col[i]);
  return out;
}

/**
 * Running mean over the last `window` rows, skipping non-finite values (a NaN loss is drawn as
 * a marker of its own; it must not blank the trend). Output i covers rows i-window+1..i;
 * null where that window holds no finite value. Computes only rows `from..to`, so a chart can
 * extend its trace without recomputing what it drew.
 *
 * @param {ArrayLike<number>} values
 * @param {number} window
 * @returns {(number|null)[]}
 */
export function runningMean(values, window, from = 0, to = values.length) {
  const w = Math.max(1, Math.floor(window));
  const out = new Array(Math.max(0, to - from));
  let sum = 0;
  let count = 0;
  const lo = Math.max(0, from - w + 1);
  for (let i = lo; i < to; i++) {
    const v = values[i];
    if (Number.isFinite(v)) {
      sum += v;
      count++;
    }
    const old = i - w;
    if (old >= lo && Number.isFinite(values[old])) {
      sum -= values[old];
      count--;
    }
    if (i >= from) out[i - from] = count > 0 ? sum / count : null;
  }
  return out;
}

/**
 * x values of the rows in `from..to` where `test(value)` holds (markers for NaN loss,
 * non-finite gradients...).
 * @param {ArrayLike<number>} xs
 * @param {ArrayLike<number>} values
 * @param {(v: number) => boolean} test
 */
export function xsWhere(xs, values, test, from = 0, to = values.length) {
  const out = [];
  for (let i = from; i < to; i++) if (test(values[i])) out.push(xs[i]);
  return out;
}

/**
 * Per-component sums of a count channel over the rows whose step lies in the last
 * `windowSteps` steps. Rows are bucket means after compaction, so each row counts `weight`
 * times: the sums are the true step sums. Returns the sums and the steps covered.
 *
 * @param {ArrayLike<number>[]} cols one column per class
 * @param {ArrayLike<number>} steps the `step` column
 * @param {ArrayLike<number>|null} weights steps per row (null: 1 each)
 * @param {number} windowSteps Infinity for all rows
 * @returns {{sums: number[], steps: number}}
 */
export function windowSums(cols, steps, weights, windowSteps = Infinity) {
  const n = steps.length;
  let last = -Infinity;
  for (let i = n - 1; i >= 0; i--) {
    if (Number.isFinite(steps[i])) {
      last = steps[i];
      break;
    }
  }
  const sums = cols.map(() => 0);
  let covered = 0;
  for (let i = n - 1; i >= 0; i--) {
    if (!(steps[i] > last - windowSteps)) break;
    const w = weights ? weights[i] : 1;
    covered += w;
    for (let k = 0; k < cols.length; k++) {
      const v = cols[k][i];
      if (Number.isFinite(v)) sums[k] += v * w;
    }
  }
  return { sums, steps: covered };
}

/** Values divided by their sum (all zeros when the sum is 0). */
export function shares(values) {
  const total = values.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
  return values.map((v) => (total > 0 && Number.isFinite(v) ? v / total : 0));
}

/**
 * A validation confusion matrix as C rows of C numbers (row = true class, column =
 * predicted), from a nested list, a flat list/typed array of C*C, or null when it is neither.
 * @param {*} value
 * @param {number} [c] classes; inferred from the size when absent
 * @returns {number[][]|null}
 */
export function confusionMatrix(value, c) {
  if (value == null) return null;
  if (Array.isArray(value) && value.length && Array.isArray(value[0])) {
    const rows = value.map((r) => r.map(Number));
    if (rows.some((r) => r.length !== rows.length)) return null;
    return rows;
  }
  const flat = Array.from(value, Number);
  const size = c > 0 ? c : Math.round(Math.sqrt(flat.length));
  if (size === 0 || size * size !== flat.length) return null;
  const out = [];
  for (let i = 0; i < size; i++) out.push(flat.slice(i * size, (i + 1) * size));
  return out;
}

/**
 * Bucket rows into at most `maxCols` heatmap columns (a browser cannot draw 20000 columns per
 * frame): x = mean step of the bucket, z[k][b] = mean of component k over the bucket (a bucket
 * with a non-finite value gets null: the gap marks it).
 *
 * @param {ArrayLike<number>} xs
 * @param {ArrayLike<number>[]} cols
 * @param {number} maxCols
 * @returns {{x: number[], z: (number|null)[][]}}
 */
export function bucketColumns(xs, cols, maxCols = 400) {
  const n = xs.length;
  const per = Math.max(1, Math.ceil(n / maxCols));
  const nb = Math.ceil(n / per);
  const x = new Array(nb);
  const z = cols.map(() => new Array(nb));
  for (let b = 0; b < nb; b++) {
    const lo = b * per;
    const hi = Math.min(n, lo + per);
    let sx = 0;
    for (let i = lo; i < hi; i++) sx += xs[i];
    x[b] = sx / (hi - lo);
    for (let k = 0; k < cols.length; k++) {
      let s = 0;
      for (let i = lo; i < hi; i++) s += cols[k][i];
      z[k][b] = finiteOrNull(s / (hi - lo));
    }
  }
  return { x, z };
}

/** log10 of each positive finite entry, null elsewhere (a zero norm has no log). */
export function log10Matrix(z) {
  return z.map((row) => row.map((v) => (v != null && v > 0 && Number.isFinite(v) ? Math.log10(v) : null)));
}

/** Each column divided by its column sum (a histogram per step becomes shares). */
export function normalizeColumns(z) {
  if (!z.length) return z;
  const nb = z[0].length;
  const totals = new Array(nb).fill(0);
  for (const row of z) for (let b = 0; b < nb; b++) totals[b] += row[b] ?? 0;
  return z.map((row) => row.map((v, b) => (v == null ? null : totals[b] > 0 ? v / totals[b] : 0)));
}

/**
 * One epoch metric as a series: x = the record's `steps` (steps done when the epoch ended).
 * @param {object[]} epochs
 * @param {string} key
 */
export function epochSeries(epochs, key) {
  const x = [];
  const y = [];
  for (const r of epochs || []) {
    const v = Number(r?.[key]);
    if (r && key in r && typeof r[key] !== "object" && Number.isFinite(Number(r.steps))) {
      x.push(Number(r.steps));
      y.push(finiteOrNull(v));
    }
  }
  return { x, y };
}

const NOT_METRICS = new Set(["epoch", "steps", "loss", "val_loss", "val_samples", "val_loss_recorded"]);

/**
 * Scalar metric names in the epoch records besides the losses (`accuracy`, `val_accuracy`...),
 * train names first; the learning rate Keras logs is left to the lr chart.
 * @param {object[]} epochs
 * @returns {string[]}
 */
export function metricKeys(epochs) {
  const keys = new Set();
  for (const r of epochs || []) {
    for (const [k, v] of Object.entries(r || {})) {
      if (NOT_METRICS.has(k) || /learning_rate|^lr$/.test(k)) continue;
      if (typeof v === "number" || (typeof v === "string" && v !== "" && Number.isFinite(Number(v)))) keys.add(k);
    }
  }
  const all = [...keys];
  return [...all.filter((k) => !k.startsWith("val_")), ...all.filter((k) => k.startsWith("val_"))];
}

/** Mean of the last `k` finite values of a column; NaN when there is none. */
export function recentMean(col, k = 20) {
  let s = 0;
  let c = 0;
  for (let i = col.length - 1; i >= 0 && c < k; i--) {
    if (Number.isFinite(col[i])) {
      s += col[i];
      c++;
    }
  }
  return c ? s / c : NaN;
}
