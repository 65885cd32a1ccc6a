/**
 * Decoding of what Python sends (see js/README.md, "Protocol"): float32 buffers laid out
 * column-major, `D` blocks of `n` values, one block per scalar column, channels in
 * `meta.channels` order (each channel `[name, width]` spans `width` consecutive columns).
 *
 * Pure functions, no DOM: the store and the tests use them directly.
 */

/**
 * The bytes of whatever a widget buffer arrives as: ipywidgets hands custom-message buffers
 * and `bytes` traits over as DataView, other hosts as ArrayBuffer or Uint8Array, and a widget
 * state saved in a notebook may come back as a base64 string.
 *
 * @param {DataView|ArrayBuffer|ArrayBufferView|string|null|undefined} buf
 * @returns {Uint8Array} a view (no copy where possible); empty for null/undefined
 */
export function toBytes(buf) {
  if (buf == null) return new Uint8Array(0);
  if (buf instanceof Uint8Array) return buf;
  if (ArrayBuffer.isView(buf)) return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf instanceof ArrayBuffer) return new Uint8Array(buf);
  if (typeof buf === "string") {
    const bin = atob(buf);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  if (buf && buf.buffer instanceof ArrayBuffer) return toBytes(buf.buffer);
  throw new TypeError(`bertlab: cannot read a buffer of type ${typeof buf}`);
}

/**
 * A float32 view of the bytes; copies when the offset is not 4-byte aligned (a Float32Array
 * cannot start there). Trailing bytes that do not make a whole float are ignored.
 *
 * @param {Uint8Array} bytes
 * @returns {Float32Array}
 */
export function toFloat32(bytes) {
  const count = Math.floor(bytes.byteLength / 4);
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, count);
  const copy = new Uint8Array(count * 4);
  copy.set(bytes.subarray(0, count * 4));
  return new Float32Array(copy.buffer);
}

/**
 * Total number of scalar columns (`D`) of a channel list.
 * @param {Array<[string, number]>} channels
 */
export function totalWidth(channels) {
  let d = 0;
  for (const [, width] of channels || []) d += Number(width) || 0;
  return d;
}

/**
 * Where each channel starts in a row: `name -> {offset, width}`.
 * @param {Array<[string, number]>} channels
 * @returns {Map<string, {offset: number, width: number}>}
 */
export function channelIndex(channels) {
  const index = new Map();
  let offset = 0;
  for (const [name, width] of channels || []) {
    const w = Number(width) || 0;
    index.set(String(name), { offset, width: w });
    offset += w;
  }
  return index;
}

/**
 * Split a column-major float32 buffer into its `D` columns.
 *
 * `rows` is what the message says; when it disagrees with the byte length (a trait whose
 * `snapshot_rows` has not arrived yet, a truncated buffer) the rows are inferred from the bytes
 * so a mismatch never reads past the end.
 *
 * @param {*} buf any buffer `toBytes` accepts
 * @param {number} width D, the number of scalar columns
 * @param {number} [rows] the number of rows the sender announced
 * @returns {{n: number, cols: Float32Array[]}} `cols[j]` is column j (a view, length n)
 */
export function decodeColumns(buf, width, rows) {
  const values = toFloat32(toBytes(buf));
  if (!(width > 0)) return { n: 0, cols: [] };
  let n = Number.isFinite(rows) && rows >= 0 ? Math.floor(rows) : 0;
  if (n * width !== values.length) n = Math.floor(values.length / width);
  const cols = new Array(width);
  for (let j = 0; j < width; j++) cols[j] = values.subarray(j * n, (j + 1) * n);
  return { n, cols };
}

/**
 * Drop the first `k` rows of decoded columns (rows already held, e.g. an overlapping delta).
 * @param {{n: number, cols: Float32Array[]}} block
 * @param {number} k
 */
export function dropRows(block, k) {
  if (k <= 0) return block;
  const skip = Math.min(k, block.n);
  return { n: block.n - skip, cols: block.cols.map((c) => c.subarray(skip)) };
}

/**
 * Largest finite value of a column (the last step a block covers); -Infinity when none.
 * @param {ArrayLike<number>|null} col
 */
export function maxFinite(col) {
  let best = -Infinity;
  if (!col) return best;
  for (let i = 0; i < col.length; i++) {
    const v = col[i];
    if (v > best && Number.isFinite(v)) best = v;
  }
  return best;
}

/**
 * Build a column-major float32 buffer from row arrays (tests and the standalone demo).
 * @param {number[][]} rows each row of length D
 * @returns {ArrayBuffer}
 */
export function encodeRows(rows) {
  const n = rows.length;
  const d = n ? rows[0].length : 0;
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) out[j * n + i] = rows[i][j];
  return out.buffer;
}
