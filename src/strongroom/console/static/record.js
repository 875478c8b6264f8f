// Record page: one person's record, as the caller's role shows it (masks applied by the server).
import { call, purpose, validPurpose } from "./api.js";
import { append, el, replace, message, show } from "./dom.js";
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
  const rows = Object.keys(source).sort().map((key) => {
    const cell = el("td", { class: `field-${key}`, text: show(source[key]) });
    return el("tr", {}, el("th", { text: t(`field.${key}`, {}, key) }), cell,
      el("td", { class: "reveal-cell" }, revealSlot(index, id, key, source[key], cell, refreshBudget)));
  });
  main.appendChild(el("p", { class: "hint", text: `${index} / ${id}` }));
  main.appendChild(el("table", { class: "grid record", id: "record-table" }, el("tbody", {}, rows)));
  main.appendChild(el("p", { class: "hint", text: t("record.reveal_note") }));
}

export function looksMasked(value) {
  return typeof value === "string" && (/\*{2,}/.test(value) || value === "[REDACTED]" || value.startsWith("h:"));
}

// A masked field is revealed on request, one at a time, with a purpose (a case number): the server
// checks the `reveal` privilege, charges the reveal budget and names the field in the audit record.
// The clear value is shown in its place (`cell`) and kept nowhere else (not in storage, not in the URL).
// Used by the record page and by the search results table.
export function revealSlot(index, id, key, value, cell, refreshBudget) {
  if (!looksMasked(value)) return null;
  const slot = el("div", { class: "reveal-slot" });
  const open = el("button", { type: "button", class: "secondary reveal", dataset: { field: key }, text: t("record.reveal") });
  open.addEventListener("click", () => {
    const input = el("input", { type: "text", class: "reveal-purpose", maxlength: "256", value: purpose(),
      placeholder: t("purpose.placeholder"), "aria-label": t("purpose.label"), required: true });
    const note = el("span", { class: "hint reveal-note" });
    const form = el("form", { class: "reveal-form inline", dataset: { field: key } },
      el("label", {}, t("record.reveal_purpose"), input),
      el("button", { type: "submit", class: "reveal-confirm", text: t("record.reveal_confirm") }),
      el("button", { type: "button", class: "secondary reveal-cancel", text: t("record.reveal_cancel"),
        onclick: () => replace(slot, open) }),
      note);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = input.value.trim();
      if (!validPurpose(text)) {
        note.textContent = t("purpose.invalid");
        return;
      }
      try {
        const answer = await call("POST", `/_strongroom/reveal/${encodeURIComponent(index)}/${encodeURIComponent(id)}`,
          { fields: [key] }, { purposeText: text });
        const values = (answer.fields || {})[key];
        cell.textContent = show(values === undefined ? "" : values.length === 1 ? values[0] : values);
        cell.classList.add("revealed");
        replace(slot, el("span", { class: "hint revealed-note", text: t("record.revealed", { purpose: text }) }));
      } catch (error) {
        note.textContent = error.status === 403 ? t("record.reveal_denied")
          : error.status === 429 ? t("record.reveal_budget", { reason: error.message }) : error.message;
        note.classList.add("error");
      } finally {
        refreshBudget();
      }
    });
    replace(slot, form);
    input.focus();
  });
  return append(slot, [open]);
}
