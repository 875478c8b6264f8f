// Search page: one box that understands names, national IDs and phone numbers, plus filters.
import { call, q } from "./api.js";
import { el, replace, message, show } from "./dom.js";
import { t } from "./i18n.js";
import { looksMasked, revealSlot } from "./record.js";

const COLUMNS = ["name", "gender", "birth_date", "birthplace", "national_id", "phone", "address"];
const NATIONAL_ID = /^\d{17}[\dXx]$/;

// What the box holds: a national ID (18 characters, check digit may be X), a mainland phone number
// (+86, spaces and dashes allowed), or else a name (matched as a phrase).
export function understand(text) {
  const value = text.trim();
  if (!value) return null;
  if (NATIONAL_ID.test(value)) return { kind: "national_id", query: { term: { national_id: value.toUpperCase() } } };
  const digits = value.replace(/[\s-]/g, "").replace(/^(\+?86)(?=1\d{10}$)/, "");
  if (/^1\d{10}$/.test(digits)) return { kind: "phone", query: { term: { phone: digits } } };
  return { kind: "name", query: { match_phrase: { name: value } } };
}

export function buildQuery(form) {
  const must = [];
  const filter = [];
  const understood = understand(form.text);
  if (understood) must.push(understood.query);
  if (form.birthplace.trim()) filter.push({ term: { birthplace: form.birthplace.trim() } });
  if (form.gender) filter.push({ term: { gender: form.gender } });
  const from = form.yearFrom.trim();
  const to = form.yearTo.trim();
  if (from || to) {
    // A protected date takes a range with both bounds (day granularity).
    const low = /^\d{4}$/.test(from) ? from : "1900";
    const high = /^\d{4}$/.test(to) ? to : String(new Date().getFullYear());
    filter.push({ range: { birth_date: { gte: `${low}-01-01`, lte: `${high}-12-31` } } });
  }
  if (!must.length && !filter.length) return { understood: null, query: null };
  return { understood, query: { bool: { must, filter } } };
}

export async function searchPage(main, { refreshBudget }) {
  const params = new URLSearchParams(window.location.search);
  const index = el("input", { id: "index", type: "text", value: params.get("index") || "residents", size: "14" });
  const text = el("input", { id: "q", type: "search", placeholder: t("search.placeholder"), value: params.get("q") || "",
    class: "wide", autofocus: true });
  const birthplace = el("input", { id: "f-birthplace", type: "text", size: "10" });
  const yearFrom = el("input", { id: "f-year-from", type: "text", size: "5", inputmode: "numeric", placeholder: "1960" });
  const yearTo = el("input", { id: "f-year-to", type: "text", size: "5", inputmode: "numeric", placeholder: "1990" });
  const gender = el("select", { id: "f-gender" },
    el("option", { value: "", text: t("search.any") }), el("option", { value: "男", text: t("search.male") }),
    el("option", { value: "女", text: t("search.female") }));
  const kind = el("p", { id: "understood", class: "hint" });
  const results = el("section", { id: "results" });
  const form = el("form", { id: "search-form", class: "form inline" },
    el("label", {}, t("search.index"), index),
    el("label", { class: "grow" }, t("search.box"), text),
    el("label", {}, t("search.birthplace"), birthplace),
    el("label", {}, t("search.years"), yearFrom, "–", yearTo),
    el("label", {}, t("search.gender"), gender),
    el("button", { type: "submit", id: "search-button", text: t("search.submit") }));

  let latest = 0; // an older answer arriving late must not overwrite a newer one
  async function run(event) {
    if (event) event.preventDefault();
    const mine = ++latest;
    const built = buildQuery({ text: text.value, birthplace: birthplace.value, gender: gender.value,
      yearFrom: yearFrom.value, yearTo: yearTo.value });
    kind.textContent = built.understood ? t(`search.kind.${built.understood.kind}`) : "";
    if (!built.query) {
      replace(results, message(t("search.empty"), "hint"));
      return;
    }
    replace(results, message(t("common.loading"), "hint loading"));
    try {
      const answer = await call("POST", `/${encodeURIComponent(index.value.trim())}/_search`,
        { query: built.query, size: 20, track_total_hits: 1000 }, { withPurpose: true });
      if (mine === latest) replace(results, resultsTable(answer, index.value.trim(), refreshBudget));
    } catch (error) {
      if (mine === latest) replace(results, message(error.message));
    }
    refreshBudget();
  }

  form.addEventListener("submit", run);
  replace(main, el("h1", { text: t("nav.search") }), form, kind,
    el("p", { class: "hint", text: t("search.help") }), results);
  if (text.value) run();
}

// A cell of the results table; a masked value gets its Reveal button (record.js) beside it.
function resultCell(index, hit, column, refreshBudget) {
  const value = (hit._source || {})[column];
  if (!looksMasked(value)) return el("td", { class: `col-${column}`, text: show(value) });
  const shown = el("span", { class: "cell-value", text: show(value) });
  return el("td", { class: `col-${column}` }, shown, revealSlot(index, hit._id, column, value, shown, refreshBudget));
}

function resultsTable(answer, index, refreshBudget) {
  const hits = (answer.hits && answer.hits.hits) || [];
  const total = answer.hits && answer.hits.total ? answer.hits.total.value : hits.length;
  if (!hits.length) return message(t("search.none"), "hint");
  const seen = new Set();
  for (const hit of hits) for (const key of Object.keys(hit._source || {})) seen.add(key);
  const columns = [...COLUMNS.filter((c) => seen.has(c)), ...[...seen].filter((c) => !COLUMNS.includes(c) && c !== "case_notes")];
  const rows = hits.map((hit) => el("tr", {},
    columns.map((c) => resultCell(index, hit, c, refreshBudget)),
    el("td", {}, el("a", { class: "open-record", href: `/_console/record${q({ index, id: hit._id })}`, text: t("search.open") }))));
  return el("div", {},
    el("p", { id: "total", class: "hint", text: t("search.total", { shown: hits.length, total }) }),
    el("table", { class: "grid", id: "results-table" },
      el("thead", {}, el("tr", {}, columns.map((c) => el("th", { text: t(`field.${c}`, {}, c) })), el("th", {}))),
      el("tbody", {}, rows)));
}
