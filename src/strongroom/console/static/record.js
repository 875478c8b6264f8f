// Record page: one person's record, as the caller's role shows it (masks applied by the server).
import { call } from "./api.js";
import { el, replace, message, show } from "./dom.js";
import { t } from "./i18n.js";

export async function recordPage(main, { refreshBudget }) {
  const params = new URLSearchParams(window.location.search);
  const index = params.get("index") || "residents";
  const id = params.get("id");
  replace(main, el("h1", { text: t("record.title") }));
  if (!id) {
    main.appendChild(message(t("record.noid"), "hint"));
    return;
  }
  let doc;
  try {
    doc = await call("GET", `/${encodeURIComponent(index)}/_doc/${encodeURIComponent(id)}`, undefined, { withPurpose: true });
  } catch (error) {
    main.appendChild(message(error.status === 404 ? t("record.missing") : error.message));
    refreshBudget();
    return;
  }
  refreshBudget();
  const source = doc._source || {};
  const rows = Object.keys(source).sort().map((key) => el("tr", {},
    el("th", { text: t(`field.${key}`, {}, key) }),
    el("td", { class: `field-${key}`, text: show(source[key]) }),
    el("td", {}, revealSlot(key, source[key]))));
  main.appendChild(el("p", { class: "hint", text: `${index} / ${id}` }));
  main.appendChild(el("table", { class: "grid record", id: "record-table" }, el("tbody", {}, rows)));
  main.appendChild(el("p", { class: "hint", text: t("record.reveal_note") }));
}

// RESERVED FOR A PER-FIELD REVEAL. The server has no "reveal one masked field" operation yet; when it
// does, this button asks for the purpose (case number), calls it, and the audit records the reveal.
function revealSlot(key, value) {
  const masked = typeof value === "string" && (/\*{2,}/.test(value) || value === "[REDACTED]" || value.startsWith("h:"));
  if (!masked) return null;
  return el("button", { type: "button", class: "secondary reveal", disabled: true, title: t("record.reveal_pending"),
    dataset: { field: key }, text: t("record.reveal") });
}
