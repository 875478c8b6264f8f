// The console's shell: header (navigation, purpose, budget, language, logout) and the page of the path.
import { call, loadSession, logout, purpose, setPurpose, validPurpose } from "./api.js";
import { el, replace, message } from "./dom.js";
import { applyI18n, languageSwitch, t } from "./i18n.js";
import { searchPage } from "./search.js";
import { recordPage } from "./record.js";
import { alertsPage } from "./alerts.js";
import { auditPage } from "./audit.js";
import { keysPage, rolesPage, usersPage } from "./admin.js";
import { chartsPage } from "./charts.js";

const PAGES = {
  search: searchPage, record: recordPage, alerts: alertsPage, audit: auditPage,
  users: usersPage, roles: rolesPage, keys: keysPage, charts: chartsPage,
};
const NAV = ["search", "alerts", "audit", "charts", "users", "roles", "keys"];

export async function refreshBudget() {
  const node = document.getElementById("budget");
  if (!node) return;
  try {
    const usage = await call("GET", "/_strongroom/usage");
    const hour = usage.usage && usage.usage.records ? usage.usage.records.hour : null;
    if (!hour || hour.limit === null || hour.limit === undefined) {
      node.textContent = t("budget.unlimited");
    } else {
      node.textContent = t("budget.left", { left: hour.remaining, limit: hour.limit });
    }
    node.dataset.remaining = hour && hour.remaining !== undefined && hour.remaining !== null ? hour.remaining : "";
    const reveals = usage.usage && usage.usage.reveals ? usage.usage.reveals.hour : null;
    const revealNode = document.getElementById("reveal-budget");
    if (revealNode) {
      const limited = reveals && reveals.limit !== null && reveals.limit !== undefined;
      revealNode.textContent = limited ? t("budget.reveals", { left: reveals.remaining, limit: reveals.limit }) : "";
      revealNode.dataset.remaining = limited ? reveals.remaining : "";
      revealNode.classList.toggle("warn", Boolean(limited && reveals.remaining === 0));
    }
    const blocked = usage.usage && usage.usage.blocked;
    node.classList.toggle("warn", Boolean(blocked) || (hour && hour.remaining === 0));
  } catch (error) {
    node.textContent = t("budget.unknown");
  }
}

function header(session, page) {
  const purposeInput = el("input", {
    id: "purpose", type: "text", maxlength: "256", value: purpose(), placeholder: t("purpose.placeholder"),
    "aria-label": t("purpose.label"),
  });
  const purposeNote = el("span", { class: "hint", id: "purpose-note" });
  purposeInput.addEventListener("change", () => {
    const text = purposeInput.value.trim();
    if (text && !validPurpose(text)) {
      purposeNote.textContent = t("purpose.invalid");
      return;
    }
    purposeNote.textContent = "";
    setPurpose(text);
  });
  return [
    el("a", { class: "brand", href: "/_console/search", text: "Strongroom" }),
    el("nav", { class: "nav" }, NAV.map((name) => el("a", {
      href: `/_console/${name}`, id: `nav-${name}`, class: name === page ? "active" : "", text: t(`nav.${name}`),
    }))),
    el("div", { class: "purpose" }, el("label", { for: "purpose", text: t("purpose.label") }), purposeInput,
      purposeNote),
    el("div", { class: "budget-box" }, el("span", { class: "hint", text: t("budget.label") }),
      el("span", { id: "budget", class: "budget", text: "…" }), el("span", { id: "reveal-budget", class: "budget" })),
    el("div", { class: "who" },
      el("span", { id: "who", text: session.user }),
      languageSwitch(),
      el("button", { type: "button", id: "logout", class: "secondary", text: t("nav.logout"), onclick: () => logout() })),
  ];
}

async function main() {
  applyI18n(document);
  const session = await loadSession();
  if (!session) return;
  const parts = window.location.pathname.replace(/^\/_console\/?/, "").split("/").filter(Boolean);
  const page = PAGES[parts[0]] ? parts[0] : "search";
  replace(document.getElementById("top"), ...header(session, page));
  const main = document.getElementById("main");
  try {
    await PAGES[page](main, { refreshBudget });
  } catch (error) {
    replace(main, message(error.message));
  }
  refreshBudget();
}

main().catch((error) => {
  replace(document.getElementById("main"), message(String(error && error.message ? error.message : error)));
});
