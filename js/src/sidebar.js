/**
 * The findings sidebar: every finding Python raised (live first in Python's display order,
 * resolved ones greyed at the bottom). A live finding whose `cause` is another live finding is
 * a symptom: it is drawn inside its cause's `.bertlab-finding-group`, indented under it, so the
 * root cause comes first (see `findingTree`). Clicking one selects it: the dashboard switches to its
 * panel and shades its steps, and the sidebar shows `.bertlab-finding-detail` under it with the
 * explanation and the fix (in a <pre>, with a copy button).
 *
 * Findings carry user text (layer and class names, file paths): everything is inserted with
 * textContent, never as HTML.
 */

const ICONS = { error: "✖", warning: "▲", info: "ℹ" };
const SEVERITIES = new Set(Object.keys(ICONS));

/** Live findings first (keeping their order), resolved ones after. */
export function orderFindings(findings) {
  const list = (findings || []).filter((f) => f && typeof f === "object");
  return [...list.filter((f) => f.status !== "resolved"), ...list.filter((f) => f.status === "resolved")];
}

/**
 * The findings as a forest, in display order: `[{finding, symptoms: [node, ...]}, ...]`. A live
 * finding goes under the live finding its `cause` names (chains nest deeper); one whose cause is
 * absent, resolved or itself stays at the top level, as do resolved findings (and, of findings
 * whose causes go round a loop, the first one in order). Every finding appears exactly once; siblings keep their order.
 * @param {object[]} findings
 */
export function findingTree(findings) {
  const list = orderFindings(findings);
  const live = new Map();
  for (const f of list) if (f.status !== "resolved" && !live.has(f.code)) live.set(f.code, f);
  const linked = (f) => (f.status !== "resolved" && f.cause != null && f.cause !== f.code ? live.get(f.cause) : undefined);
  // cause loops (a -> b -> a) have no root: the loop's first finding in order becomes one
  const rank = new Map(list.map((f, i) => [f, i]));
  const cut = new Set();
  for (const f of list) {
    const path = [];
    let p = f;
    while (p && !path.includes(p) && !cut.has(p)) {
      path.push(p);
      p = linked(p);
    }
    if (p && path.includes(p) && !cut.has(p)) {
      const loop = path.slice(path.indexOf(p));
      cut.add(loop.reduce((x, y) => (rank.get(y) < rank.get(x) ? y : x)));
    }
  }
  const parentOf = (f) => (cut.has(f) ? undefined : linked(f));
  const nodes = new Map(list.map((f) => [f, { finding: f, symptoms: [] }]));
  const roots = [];
  for (const f of list) {
    const parent = parentOf(f);
    (parent ? nodes.get(parent).symptoms : roots).push(nodes.get(f));
  }
  return roots;
}

/** A finding's severity as one of error/warning/info. */
export const severityOf = (f) => (SEVERITIES.has(f.severity) ? f.severity : "info");

/** Element helper: tag, class, text (as textContent). */
function h(doc, tag, cls, text) {
  const el = doc.createElement(tag);
  if (cls) el.className = cls;
  if (text != null) el.textContent = String(text);
  return el;
}

/**
 * Put text on the clipboard: the async Clipboard API where the page allows it (secure
 * context), else a hidden textarea and execCommand("copy") (plain-http JupyterHub, file://).
 * @returns {Promise<boolean>} whether it worked
 */
export async function copyText(text, doc = globalThis.document) {
  const nav = doc.defaultView?.navigator;
  try {
    if (nav?.clipboard?.writeText) {
      await nav.clipboard.writeText(text);
      return true;
    }
  } catch {
    // denied or not a secure context: fall back below
  }
  const ta = doc.createElement("textarea");
  ta.value = text;
  ta.setAttribute("readonly", "");
  ta.style.position = "fixed";
  ta.style.opacity = "0";
  doc.body.appendChild(ta);
  ta.select();
  let ok = false;
  try {
    ok = doc.execCommand ? doc.execCommand("copy") : false;
  } catch {
    ok = false;
  }
  ta.remove();
  return ok;
}

export class Sidebar {
  /**
   * @param {Document} doc
   * @param {{onSelect: (finding: object|null, user: boolean) => void}} opts called when the
   *   selection changes (`user`: by a click, so the dashboard switches to the finding's panel)
   */
  constructor(doc, { onSelect }) {
    this.doc = doc;
    this.onSelect = onSelect;
    this.el = h(doc, "aside", "bertlab-sidebar");
    const head = h(doc, "div", "bertlab-sidebar-head");
    this.heading = h(doc, "span", "bertlab-sidebar-title", "Findings");
    this.count = h(doc, "span", "bertlab-sidebar-count");
    head.append(this.heading, this.count);
    // The verdict first: one sentence naming the root cause, its symptoms and the evidence.
    this.verdict = h(doc, "div", "bertlab-verdict");
    this.verdict.setAttribute("role", "status");
    this.verdict.hidden = true;
    this.list = h(doc, "div", "bertlab-findings");
    this.list.setAttribute("role", "list");
    this.empty = h(doc, "div", "bertlab-findings-empty");
    this.notes = h(doc, "div", "bertlab-notes");
    this.detail = h(doc, "div", "bertlab-finding-detail");
    this.detail.hidden = true;
    this.el.append(head, this.verdict, this.list, this.empty, this.notes);
    this.findings = [];
    this.selected = null; // code
  }

  /**
   * Show these findings (the full list; called whenever Python sends it).
   * @param {object[]} findings
   * @param {string} status run status, for the empty message
   * @param {string[]} [notes] what could not be observed (meta.notes)
   * @param {string} [verdict] one sentence over the findings (root cause, symptoms, evidence)
   */
  update(findings, status, notes = [], verdict = "") {
    const text = typeof verdict === "string" ? verdict.trim() : "";
    this.verdict.textContent = text;
    this.verdict.hidden = !text;
    const worst = (findings || []).filter((f) => f && f.status !== "resolved").map((f) => f.severity);
    this.verdict.dataset.severity = worst.includes("error") ? "error" : worst.includes("warning") ? "warning" : "ok";
    this.findings = orderFindings(findings);
    const live = this.findings.filter((f) => f.status !== "resolved").length;
    this.count.textContent = this.findings.length ? `${live} live` + (this.findings.length > live ? `, ${this.findings.length - live} resolved` : "") : "";
    this.list.replaceChildren(...findingTree(this.findings).map((node) => this._node(node)));
    this.empty.hidden = this.findings.length > 0;
    this.empty.textContent =
      status === "running" ? "Nothing wrong so far." : status === "waiting" ? "Findings appear here while training runs." : "No findings: nothing looked wrong.";
    this.notes.replaceChildren(...(notes || []).map((n) => h(this.doc, "div", "bertlab-note", n)));
    const still = this.selected && this.findings.find((f) => f.code === this.selected);
    if (still) {
      this._showDetail(still);
      this.onSelect(still, false); // its steps may have moved: refresh the shading only
    } else if (this.selected) this.select(null, false);
  }

  /** A finding alone, or a `.bertlab-finding-group`: the cause, then its symptoms indented. */
  _node({ finding, symptoms }) {
    const item = this._item(finding);
    if (!symptoms.length) return item;
    const group = h(this.doc, "div", "bertlab-finding-group");
    group.dataset.code = item.dataset.code;
    const under = h(this.doc, "div", "bertlab-symptoms");
    under.setAttribute("role", "group");
    under.setAttribute("aria-label", `caused by ${finding.code}`);
    under.append(...symptoms.map((n) => this._node(n)));
    group.append(item, under);
    return group;
  }

  _item(f) {
    const doc = this.doc;
    const sev = severityOf(f);
    const item = h(doc, "div", "bertlab-finding");
    item.dataset.code = String(f.code ?? "");
    item.dataset.severity = sev;
    item.dataset.status = f.status === "resolved" ? "resolved" : "live";
    item.setAttribute("role", "button");
    item.tabIndex = 0;
    item.setAttribute("aria-expanded", String(this.selected === f.code));
    if (this.selected === f.code) item.classList.add("bertlab-selected");
    const icon = h(doc, "span", "bertlab-finding-icon", ICONS[sev]);
    icon.setAttribute("aria-label", sev);
    const body = h(doc, "div", "bertlab-finding-body");
    body.append(h(doc, "div", "bertlab-finding-title", f.title ?? f.code));
    if (f.evidence) body.append(h(doc, "div", "bertlab-finding-evidence", f.evidence));
    const tags = [String(f.code ?? "")];
    if (f.cause) tags.push(`caused by ${f.cause}`);
    if (f.status === "resolved") tags.push("resolved");
    body.append(h(doc, "div", "bertlab-finding-meta", tags.join(" · ")));
    item.append(icon, body);
    // Always selects (the contract: a click activates the finding's panel and shows its
    // detail, also when it is already selected and the user moved to another tab since).
    const activate = () => this.select(f.code);
    item.addEventListener("click", activate);
    item.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") {
        ev.preventDefault();
        activate();
      }
    });
    return item;
  }

  /**
   * Select a finding by code (null clears the selection).
   * @param {string|null} code
   * @param {boolean} [user] a click (switches panel) rather than a refresh
   */
  select(code, user = true) {
    const f = code == null ? null : this.findings.find((x) => x.code === code) || null;
    this.selected = f ? f.code : null;
    for (const item of this.list.querySelectorAll(".bertlab-finding")) {
      const on = !!f && item.dataset.code === String(f.code);
      item.classList.toggle("bertlab-selected", on);
      item.setAttribute("aria-expanded", String(on));
    }
    if (f) {
      this._showDetail(f);
      if (user) this._reveal();
    } else {
      this.detail.hidden = true;
      this.detail.remove();
    }
    this.onSelect(f, user);
  }

  /** Scroll the sidebar (only it, not the page) so the open detail is in view. */
  _reveal() {
    const box = this.el;
    const d = this.detail;
    const item = d.previousElementSibling || d;
    const head = box.firstElementChild?.offsetHeight || 0;
    const bottom = d.offsetTop + d.offsetHeight;
    if (bottom > box.scrollTop + box.clientHeight) {
      box.scrollTop = Math.max(0, Math.min(item.offsetTop - head, bottom - box.clientHeight));
    }
  }

  _showDetail(f) {
    const doc = this.doc;
    const d = this.detail;
    d.dataset.code = String(f.code ?? "");
    const parts = [];
    const top = h(doc, "div", "bertlab-detail-top");
    const [a, b] = Array.isArray(f.steps) && f.steps.length === 2 ? f.steps : [];
    const where = a == null ? "" : `${a === b ? `step ${a}` : `steps ${a}–${b}`}, shaded in the charts`;
    const close = h(doc, "button", "bertlab-detail-close", "×");
    close.type = "button";
    close.title = "Close (clears the shading)";
    close.setAttribute("aria-label", "close");
    close.addEventListener("click", () => this.select(null));
    top.append(h(doc, "span", "bertlab-detail-steps", where), close);
    parts.push(top);
    if (f.cause) {
      const cause = h(doc, "button", "bertlab-cause", `probably caused by ${f.cause} →`);
      cause.type = "button";
      const target = this.findings.find((x) => x.code === f.cause);
      cause.disabled = !target;
      cause.addEventListener("click", () => this.select(f.cause));
      parts.push(cause);
    }
    if (f.explanation) parts.push(h(doc, "div", "bertlab-detail-label", "Why"), h(doc, "p", "bertlab-explanation", f.explanation));
    if (f.fix) {
      const fixHead = h(doc, "div", "bertlab-detail-label", "Fix");
      const copy = h(doc, "button", "bertlab-copy", "Copy");
      copy.type = "button";
      copy.title = "Copy the fix to the clipboard";
      copy.addEventListener("click", async (ev) => {
        ev.stopPropagation();
        const ok = await copyText(String(f.fix), doc);
        copy.textContent = ok ? "Copied" : "Copy failed";
        setTimeout(() => (copy.textContent = "Copy"), 1500);
      });
      fixHead.append(copy);
      parts.push(fixHead, h(doc, "pre", "bertlab-fix", f.fix));
    }
    d.replaceChildren(...parts);
    d.hidden = false;
    const item = [...this.list.querySelectorAll(".bertlab-finding")].find((el) => el.dataset.code === String(f.code));
    if (item) item.after(d);
    else this.list.append(d);
  }
}
