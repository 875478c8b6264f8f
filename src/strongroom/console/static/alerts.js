// Alerts page: the live list (refreshed every 10 s), the evidence, and blocking an identity.
import { call, q } from "./api.js";
import { el, replace, message } from "./dom.js";
import { t } from "./i18n.js";

const REFRESH_MS = 10000;

export async function alertsPage(main) {
  const kind = el("select", { id: "alert-kind" }, ["", "canary", "budget_exhausted", "probe_budget_exhausted", "reveal_budget_exhausted",
    "dump_pattern"].map((k) => el("option", { value: k, text: k ? t(`alert.${k}`, {}, k) : t("search.any") })));
  const list = el("section", { id: "alerts" });
  const blocks = el("section", { id: "blocks" });
  const status = el("p", { class: "hint", id: "alerts-status" });

  let latest = 0; // an older answer arriving late must not overwrite a newer one
  async function load(background = false) {
    const mine = ++latest;
    try {
      const [found, blocked] = await Promise.all([
        call("GET", `/_strongroom/alerts${q({ size: 200, kind: kind.value })}`, undefined, { background }),
        call("GET", "/_strongroom/blocks", undefined, { background }),
      ]);
      if (mine !== latest) return;
      const blockedIds = new Set((blocked.blocks || []).map((b) => b.identity));
      replace(list, alertTable(found.alerts || [], blockedIds, load));
      replace(blocks, blockTable(blocked.blocks || [], load));
      status.textContent = t("alerts.updated", { time: new Date().toLocaleTimeString() });
    } catch (error) {
      replace(list, message(error.message));
    }
  }

  kind.addEventListener("change", () => load());
  replace(main, el("h1", { text: t("nav.alerts") }), el("label", {}, t("alerts.kind"), kind), status, list,
    el("h2", { text: t("alerts.blocked") }), blocks);
  await load();
  const timer = setInterval(() => {
    if (!document.body.contains(list)) clearInterval(timer);
    else if (!document.hidden) load(true); // polling: does not keep the session alive
  }, REFRESH_MS);
}

function alertTable(alerts, blockedIds, reload) {
  if (!alerts.length) return message(t("alerts.none"), "hint");
  return el("table", { class: "grid", id: "alerts-table" },
    el("thead", {}, el("tr", {}, ["time", "kind", "identity", "summary", "evidence", ""].map((h) =>
      el("th", { text: h ? t(`alerts.col.${h}`) : "" })))),
    el("tbody", {}, alerts.map((alert) => el("tr", { class: `alert-${alert.kind}` },
      el("td", { text: alert.time }),
      el("td", { class: "alert-kind", text: t(`alert.${alert.kind}`, {}, alert.kind) }),
      el("td", { class: "alert-identity", text: alert.identity }),
      el("td", { text: alert.summary }),
      el("td", {}, el("details", {}, el("summary", { text: t("alerts.evidence") }),
        el("pre", { text: JSON.stringify(alert.evidence, null, 2) }))),
      el("td", {}, blockButton(alert.identity, blockedIds.has(alert.identity), reload))))));
}

function blockButton(identity, blocked, reload) {
  if (!identity) return null;
  return el("button", {
    type: "button", class: blocked ? "secondary unblock" : "danger block", dataset: { identity },
    text: blocked ? t("alerts.unblock") : t("alerts.block"),
    onclick: async (event) => {
      event.target.disabled = true;
      try {
        const path = `/_strongroom/blocks/${encodeURIComponent(identity)}`;
        if (blocked) await call("DELETE", path);
        else await call("PUT", path, { reason: t("alerts.reason") });
      } catch (error) {
        window.alert(error.message);
      }
      await reload();
    },
  });
}

function blockTable(blocks, reload) {
  if (!blocks.length) return message(t("alerts.noblocks"), "hint");
  return el("table", { class: "grid", id: "blocks-table" },
    el("thead", {}, el("tr", {}, ["identity", "reason", "expires", ""].map((h) =>
      el("th", { text: h ? t(`alerts.col.${h}`) : "" })))),
    el("tbody", {}, blocks.map((b) => el("tr", {},
      el("td", { class: "block-identity", text: b.identity }), el("td", { text: b.reason }),
      el("td", { text: b.expires_in_seconds === null ? t("alerts.until_lifted") : `${Math.round(b.expires_in_seconds)} s` }),
      el("td", {}, blockButton(b.identity, true, reload))))));
}
