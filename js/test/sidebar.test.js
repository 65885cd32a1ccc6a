// @vitest-environment happy-dom
import { afterEach, describe, expect, it } from "vitest";
import { findingTree, Sidebar } from "../src/sidebar.js";

const F = (code, cause = null, status = "live", panel = "overview") => ({ code, cause, status, panel, severity: "warning", title: code, steps: [1, 2], explanation: "why", fix: "fix" });

// Python's order: a symptom before its cause, a cause that is not live, a resolved symptom
const FINDINGS = [
  F("single-class", "high-lr"),
  F("high-lr"),
  F("loss-flat", "high-lr"),
  F("orphan", "gone-code"),
  F("old", "high-lr", "resolved"),
  F("after-resolved", "old"),
  F("grad-spike", "loss-flat"),
];

const codes = (els) => [...els].map((e) => e.dataset.code);
const codesOf = (nodes) => nodes.map((n) => n.finding.code);

afterEach(() => document.body.replaceChildren());

describe("findingTree", () => {
  it("puts live symptoms under their live cause, keeping order", () => {
    const roots = findingTree(FINDINGS);
    expect(codesOf(roots)).toEqual(["high-lr", "orphan", "after-resolved", "old"]);
    expect(codesOf(roots[0].symptoms)).toEqual(["single-class", "loss-flat"]);
    expect(codesOf(roots[0].symptoms[1].symptoms)).toEqual(["grad-spike"]);
  });

  it("a cause loop keeps its first finding at the top; every finding appears once", () => {
    const roots = findingTree([F("x"), F("a", "b"), F("b", "a"), F("c", "a"), F("self", "self")]);
    expect(codesOf(roots)).toEqual(["x", "a", "self"]);
    expect(codesOf(roots[1].symptoms)).toEqual(["b", "c"]);
    expect(roots[1].symptoms[0].symptoms).toEqual([]);
  });
});

describe("sidebar nesting", () => {
  function mount(findings) {
    const picked = [];
    const sb = new Sidebar(document, { onSelect: (f) => picked.push(f?.code ?? null) });
    document.body.append(sb.el);
    sb.update(findings, "running");
    return { sb, picked };
  }

  it("draws a symptom inside its cause's group, orphans and resolved ones at the top level", () => {
    const { sb } = mount(FINDINGS);
    const list = sb.el.querySelector(".bertlab-findings");
    // document order: each cause, then its symptoms; resolved last
    expect(codes(list.querySelectorAll(".bertlab-finding"))).toEqual(["high-lr", "single-class", "loss-flat", "grad-spike", "orphan", "after-resolved", "old"]);
    const group = list.querySelector('.bertlab-finding-group[data-code="high-lr"]');
    expect(group.parentElement).toBe(list);
    expect(group.firstElementChild.dataset.code).toBe("high-lr");
    const under = group.querySelector(":scope > .bertlab-symptoms");
    expect(codes(under.querySelectorAll(":scope > .bertlab-finding, :scope > .bertlab-finding-group"))).toEqual(["single-class", "loss-flat"]);
    for (const code of ["single-class", "loss-flat", "grad-spike"]) {
      expect(under.contains(list.querySelector(`.bertlab-finding[data-code="${code}"]`))).toBe(true);
    }
    expect(list.querySelector('.bertlab-finding-group[data-code="loss-flat"] .bertlab-finding[data-code="grad-spike"]')).not.toBeNull();
    for (const code of ["orphan", "after-resolved", "old"]) {
      expect(list.querySelector(`.bertlab-finding[data-code="${code}"]`).parentElement, code).toBe(list);
    }
  });

  it("keeps the contract: attributes on every finding, a click opens a nested one", () => {
    const { sb, picked } = mount(FINDINGS);
    for (const el of sb.el.querySelectorAll(".bertlab-finding")) {
      expect(el.dataset.severity).toBe("warning");
      expect(["live", "resolved"]).toContain(el.dataset.status);
      expect(el.getAttribute("role")).toBe("button");
    }
    const item = sb.el.querySelector('.bertlab-finding[data-code="grad-spike"]');
    item.click();
    expect(picked).toEqual(["grad-spike"]);
    expect(item.classList.contains("bertlab-selected")).toBe(true);
    const detail = sb.el.querySelector(".bertlab-finding-detail");
    expect(detail.hidden).toBe(false);
    expect(item.nextElementSibling).toBe(detail);
    // the detail's cause button selects the cause, whose detail opens between it and its symptoms
    detail.querySelector("button.bertlab-cause").click();
    const cause = sb.el.querySelector('.bertlab-finding[data-code="loss-flat"]');
    expect(cause.nextElementSibling).toBe(detail);
    expect(detail.nextElementSibling.classList.contains("bertlab-symptoms")).toBe(true);
  });

  it("re-sent findings regroup: a cause that resolves releases its symptoms", () => {
    const { sb } = mount(FINDINGS);
    sb.update(FINDINGS.map((f) => (f.code === "high-lr" ? { ...f, status: "resolved" } : f)), "running");
    const list = sb.el.querySelector(".bertlab-findings");
    expect(list.querySelector('.bertlab-finding-group[data-code="high-lr"]')).toBeNull();
    expect(list.querySelector('.bertlab-finding[data-code="single-class"]').parentElement).toBe(list);
    expect(codes(list.querySelectorAll(".bertlab-finding")).slice(-2)).toEqual(["high-lr", "old"]);
  });
});

describe("verdict", () => {
  it("shows the verdict at the top of the sidebar, before the findings, with the worst severity", () => {
    const sb = new Sidebar(document, { onSelect: () => {} });
    document.body.append(sb.el);
    const text = "Root cause: high-lr (lr too high) — lr 0.2. It explains single-class from step 3: ...";
    sb.update([{ ...F("high-lr"), severity: "info" }, { ...F("single-class", "high-lr"), severity: "error" }], "done", [], text);
    const el = sb.el.querySelector(".bertlab-verdict");
    expect(el.hidden).toBe(false);
    expect(el.textContent).toBe(text);
    expect(el.dataset.severity).toBe("error");
    expect(el.compareDocumentPosition(sb.el.querySelector(".bertlab-findings")) & Node.DOCUMENT_POSITION_FOLLOWING).toBeTruthy();
  });

  it("is hidden without a verdict and inserted as text, never HTML", () => {
    const sb = new Sidebar(document, { onSelect: () => {} });
    document.body.append(sb.el);
    sb.update([], "running");
    expect(sb.el.querySelector(".bertlab-verdict").hidden).toBe(true);
    sb.update([], "done", [], "<b>healthy</b>");
    const el = sb.el.querySelector(".bertlab-verdict");
    expect(el.querySelector("b")).toBeNull();
    expect(el.textContent).toBe("<b>healthy</b>");
    expect(el.dataset.severity).toBe("ok");
  });
});
