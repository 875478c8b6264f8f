// Audit page: the searchable trail, and whether the hash chain verifies.
import { call, q } from "./api.js";
import { el, replace, message } from "./dom.js";
import { t } from "./i18n.js";

// Page loads, static files and the session call of the console itself: hidden unless asked for.
const CONSOLE_NOISE = /^\/_console\/(static\/|session$|$|search$|record$|alerts$|audit$|users$|roles$|keys$|charts$)/;

export async function auditPage(main) {
  const identity = el("input", { id: "a-identity", type: "text", size: "14" });
  const action = el("input", { id: "a-action", type: "text", size: "18", placeholder: "/{index}/_search" });
  const index = el("input", { id: "a-index", type: "text", size: "10" });
  const outcome = el("select", { id: "a-outcome" }, ["", "ok", "refused", "error"].map((o) =>
    el("option", { value: o, text: o ? t(`audit.outcome.${o}`) : t("search.any") })));
  const purposeFilter = el("input", { id: "a-purpose", type: "text", size: "12" });
  const hideConsole = el("input", { id: "a-hide-console", type: "checkbox", checked: true });
  const chain = el("section", { id: "chain", class: "chain" }, message(t("audit.verifying"), "hint"));
  const list = el("section", { id: "audit-list" });
  const form = el("form", { id: "audit-form", class: "form inline" },
    el("label", {}, t("audit.identity"), identity), el("label", {}, t("audit.action"), action),
    el("label", {}, t("audit.index"), index), el("label", {}, t("audit.outcome"), outcome),
    el("label", {}, t("audit.purpose"), purposeFilter),
    el("label", { class: "check" }, hideConsole, t("audit.hide_console")),
    el("button", { type: "submit", id: "audit-search", text: t("search.submit") }));

  let latest = 0; // an older answer arriving late must not overwrite a newer one
  async function load(event) {
    if (event) event.preventDefault();
    const mine = ++latest;
    try {
      const found = await call("GET", `/_strongroom/audit${q({ size: 200, identity: identity.value.trim(),
        action: action.value.trim(), index: index.value.trim(), outcome: outcome.value })}`);
      const wanted = purposeFilter.value.trim();
      const records = (found.records || []).filter((r) => (!wanted || (r.purpose || "").includes(wanted))
        && !(hideConsole.checked && CONSOLE_NOISE.test(r.action || "")));
      if (mine === latest) replace(list, auditTable(records));
    } catch (error) {
      if (mine === latest) replace(list, message(error.message));
    }
  }

  form.addEventListener("submit", load);
  replace(main, el("h1", { text: t("nav.audit") }), chain, form, list);
  verify(chain);
  await load();
}

async function verify(node) {
  try {
    const report = await call("GET", "/_strongroom/audit/_verify");
    const when = report.verified_at_ms ? new Date(report.verified_at_ms).toLocaleString() : "";
    let text;
    let kind;
    if (report.ok === true) {
      text = t("audit.chain_ok", { records: report.records, checkpoints: report.checkpoints, when });
      kind = "ok";
    } else if (report.ok === false) {
      text = t("audit.chain_bad", { seq: report.bad_seq === null ? "?" : report.bad_seq, reason: report.reason || "", when });
      kind = "error";
    } else {
      text = t("audit.chain_running");
      kind = "hint";
    }
    const parts = [el("p", { id: "chain-status", class: `chain-${kind} ${kind}`, text })];
    if (report.running) parts.push(el("p", { class: "hint", text: t("audit.chain_running") }));
    const signedUpTo = report.last_checkpoint_seq === null || report.last_checkpoint_seq === undefined
      ? -1 : report.last_checkpoint_seq;
    if (report.ok === true && signedUpTo < report.last_seq) {
      parts.push(el("p", { id: "chain-unsigned", class: "hint", text: t("audit.unsigned_tail", { from: signedUpTo + 1 }) }));
    }
    replace(node, ...parts);
  } catch (error) {
    replace(node, message(error.message));
  }
}

function auditTable(records) {
  if (!records.length) return message(t("audit.none"), "hint");
  const cols = ["seq", "time", "identity", "auth", "method", "path", "purpose", "status", "revealed", "fields"];
  return el("table", { class: "grid", id: "audit-table" },
    el("thead", {}, el("tr", {}, cols.map((c) => el("th", { text: t(`audit.col.${c}`) })))),
    el("tbody", {}, records.map((r) => el("tr", { class: `outcome-${r.outcome || "alert"}` },
      el("td", { text: r.seq }), el("td", { text: r.time }), el("td", { class: "audit-identity", text: r.identity || "" }),
      el("td", { text: r.auth || "" }), el("td", { text: r.method || r.action || "" }),
      el("td", { class: "audit-path", text: r.path || (r.alert ? `alert: ${r.alert.kind}` : "") }),
      el("td", { class: "audit-purpose", text: r.purpose || "" }), el("td", { text: r.status === undefined ? "" : r.status }),
      el("td", { text: Array.isArray(r.revealed) ? r.revealed.length : "" }),
      el("td", { class: "audit-fields", text: Array.isArray(r.fields) ? r.fields.map((f) => `${f[2]} (${f[1]})`).join(", ") : "" })))));
}
