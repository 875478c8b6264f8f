// Administration (manage_security): users, roles (a form and its JSON), API keys.
import { call } from "./api.js";
import { el, replace, message } from "./dom.js";
import { t } from "./i18n.js";

const MASKS = ["", "last4", "middle", "first_char", "redact", "hash"];
const INDEX_PRIVILEGES = ["read", "reveal", "bulk_export", "view_index_metadata", "monitor", "write", "create_index", "manage", "all"];
const CLUSTER_PRIVILEGES = ["monitor", "read_audit", "manage_own_api_key", "manage_api_key", "manage_security", "all"];
const LIMIT_KEYS = ["records_per_hour", "records_per_day", "probes_per_hour", "reveals_per_hour", "requests_per_second", "max_size"];
const seg = encodeURIComponent;

function field(label, input) {
  return el("label", {}, el("span", { text: label }), input);
}

function status(node, text, kind = "ok") {
  replace(node, message(text, kind));
}

// -- users -------------------------------------------------------------------------------------
export async function usersPage(main) {
  const list = el("section", { id: "users-list" });
  const out = el("div", { id: "user-status" });
  const name = el("input", { id: "u-name", type: "text", required: true, maxlength: "256" });
  const password = el("input", { id: "u-password", type: "password", autocomplete: "new-password" });
  const roles = el("input", { id: "u-roles", type: "text", placeholder: "investigator, read_audit" });
  const fullName = el("input", { id: "u-full-name", type: "text" });
  const form = el("form", { id: "user-form", class: "form" },
    el("h2", { text: t("users.edit") }), field(t("users.name"), name), field(t("users.password"), password),
    el("p", { class: "hint", text: t("users.password_hint") }),
    field(t("users.roles"), roles), field(t("users.full_name"), fullName),
    el("button", { type: "submit", id: "user-save", text: t("common.save") }), out);

  async function load() {
    try {
      const users = await call("GET", "/_security/user");
      replace(list, el("table", { class: "grid", id: "users-table" },
        el("thead", {}, el("tr", {}, ["name", "roles", "enabled", ""].map((h) => el("th", { text: h ? t(`users.${h}`) : "" })))),
        el("tbody", {}, Object.values(users).map((u) => el("tr", {},
          el("td", { class: "user-name", text: u.username }), el("td", { text: (u.roles || []).join(", ") }),
          el("td", { text: u.enabled ? t("common.yes") : t("common.no") }),
          el("td", {},
            el("button", { type: "button", class: "secondary", text: t("common.edit"), onclick: () => {
              name.value = u.username; roles.value = (u.roles || []).join(", "); fullName.value = u.full_name || "";
              password.value = "";
            } }),
            el("button", { type: "button", class: "secondary", text: u.enabled ? t("users.disable") : t("users.enable"),
              onclick: () => act("POST", `/_security/user/${seg(u.username)}/${u.enabled ? "_disable" : "_enable"}`) }),
            el("button", { type: "button", class: "danger", text: t("common.delete"),
              onclick: () => window.confirm(t("common.confirm_delete", { name: u.username }))
                && act("DELETE", `/_security/user/${seg(u.username)}`) })))))));
    } catch (error) {
      replace(list, message(error.message));
    }
  }

  async function act(method, path, body) {
    try {
      await call(method, path, body);
      status(out, t("common.done"));
    } catch (error) {
      status(out, error.message, "error");
    }
    await load();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = { roles: roles.value.split(",").map((r) => r.trim()).filter(Boolean) };
    if (password.value) body.password = password.value;
    if (fullName.value.trim()) body.full_name = fullName.value.trim();
    act("PUT", `/_security/user/${seg(name.value.trim())}`, body).then(() => { password.value = ""; });
  });
  replace(main, el("h1", { text: t("nav.users") }), list, form);
  await load();
}

// -- roles -------------------------------------------------------------------------------------
export function roleFromForm(f) {
  const entry = { names: f.indices.split(",").map((s) => s.trim()).filter(Boolean), privileges: f.privileges };
  const grant = f.grant.split(",").map((s) => s.trim()).filter(Boolean);
  const except = f.except.split(",").map((s) => s.trim()).filter(Boolean);
  if (grant.length || except.length) entry.field_security = { grant: grant.length ? grant : ["*"], except };
  if (f.query.trim()) entry.query = JSON.parse(f.query);
  const masks = {};
  for (const [fieldName, mask] of f.masks) if (fieldName && mask) masks[fieldName] = mask;
  if (Object.keys(masks).length) entry.masks = masks;
  if (f.requirePurpose) entry.require_purpose = true;
  const role = { cluster: f.cluster, indices: entry.names.length ? [entry] : [] };
  const limits = {};
  for (const [key, value] of Object.entries(f.limits)) if (String(value).trim()) limits[key] = Number(value);
  if (Object.keys(limits).length) role.limits = limits;
  return role;
}

export async function rolesPage(main) {
  const list = el("section", { id: "roles-list" });
  const out = el("div", { id: "role-status" });
  const name = el("input", { id: "r-name", type: "text", required: true });
  const indices = el("input", { id: "r-indices", type: "text", value: "residents" });
  const privBoxes = INDEX_PRIVILEGES.map((p) => el("input", { type: "checkbox", value: p, id: `r-priv-${p}`, checked: p === "read" }));
  const clusterBoxes = CLUSTER_PRIVILEGES.map((p) => el("input", { type: "checkbox", value: p, id: `r-cluster-${p}` }));
  const grant = el("input", { id: "r-grant", type: "text", placeholder: "*" });
  const except = el("input", { id: "r-except", type: "text", placeholder: "case_notes" });
  const query = el("textarea", { id: "r-query", rows: "2", placeholder: '{"term": {"birthplace": "东城区"}}' });
  const requirePurpose = el("input", { id: "r-purpose", type: "checkbox" });
  const maskRows = el("div", { id: "r-masks" });
  const limitInputs = Object.fromEntries(LIMIT_KEYS.map((k) => [k, el("input", { id: `r-limit-${k}`, type: "number", min: "0", size: "6" })]));
  const json = el("textarea", { id: "r-json", rows: "14", class: "json", spellcheck: "false" });

  function addMask(fieldName = "", mask = "") {
    const f = el("input", { type: "text", class: "mask-field", value: fieldName, placeholder: "phone", size: "12" });
    const m = el("select", { class: "mask-kind" }, MASKS.map((k) => el("option", { value: k, text: k || "—" })));
    m.value = mask;
    const row = el("div", { class: "mask-row" }, f, m,
      el("button", { type: "button", class: "secondary", text: "×", onclick: () => { row.remove(); sync(); } }));
    f.addEventListener("input", sync);
    m.addEventListener("change", sync);
    maskRows.appendChild(row);
  }

  function formValues() {
    return {
      indices: indices.value, privileges: privBoxes.filter((b) => b.checked).map((b) => b.value),
      cluster: clusterBoxes.filter((b) => b.checked).map((b) => b.value), grant: grant.value, except: except.value,
      query: query.value, requirePurpose: requirePurpose.checked,
      masks: [...maskRows.querySelectorAll(".mask-row")].map((r) => [r.querySelector(".mask-field").value.trim(), r.querySelector(".mask-kind").value]),
      limits: Object.fromEntries(Object.entries(limitInputs).map(([k, input]) => [k, input.value])),
    };
  }

  function sync() {
    try {
      json.value = JSON.stringify(roleFromForm(formValues()), null, 2);
      json.classList.remove("invalid");
    } catch (error) {
      json.classList.add("invalid");
      status(out, t("roles.bad_query"), "error");
    }
  }

  function fill(roleName, role) {
    name.value = roleName;
    const entry = (role.indices || [])[0] || {};
    indices.value = (entry.names || []).join(", ");
    privBoxes.forEach((b) => { b.checked = (entry.privileges || []).includes(b.value); });
    clusterBoxes.forEach((b) => { b.checked = (role.cluster || []).includes(b.value); });
    grant.value = ((entry.field_security || {}).grant || []).join(", ");
    except.value = ((entry.field_security || {}).except || []).join(", ");
    query.value = entry.query ? (typeof entry.query === "string" ? entry.query : JSON.stringify(entry.query)) : "";
    requirePurpose.checked = Boolean(entry.require_purpose);
    maskRows.replaceChildren();
    for (const [f, m] of Object.entries(entry.masks || {})) addMask(f, m);
    for (const [k, input] of Object.entries(limitInputs)) input.value = role.limits && role.limits[k] !== undefined ? role.limits[k] : "";
    json.value = JSON.stringify(role, null, 2);
  }

  async function load() {
    try {
      const roles = await call("GET", "/_security/role");
      replace(list, el("table", { class: "grid", id: "roles-table" },
        el("thead", {}, el("tr", {}, [t("roles.name"), t("roles.indices"), t("roles.cluster"), ""].map((h) => el("th", { text: h })))),
        el("tbody", {}, Object.entries(roles).map(([roleName, role]) => el("tr", {},
          el("td", { class: "role-name", text: roleName }),
          el("td", { text: (role.indices || []).map((i) => `${(i.names || []).join(",")}: ${(i.privileges || []).join(",")}`).join("; ") }),
          el("td", { text: (role.cluster || []).join(", ") }),
          el("td", {},
            el("button", { type: "button", class: "secondary", text: t("common.edit"), onclick: () => fill(roleName, role) }),
            (role.metadata || {})._reserved ? null : el("button", { type: "button", class: "danger", text: t("common.delete"),
              onclick: async () => {
                if (!window.confirm(t("common.confirm_delete", { name: roleName }))) return;
                try { await call("DELETE", `/_security/role/${seg(roleName)}`); status(out, t("common.done")); }
                catch (error) { status(out, error.message, "error"); }
                load();
              } })))))));
    } catch (error) {
      replace(list, message(error.message));
    }
  }

  const form = el("form", { id: "role-form", class: "form" },
    el("h2", { text: t("roles.edit") }), field(t("roles.name"), name),
    el("fieldset", {}, el("legend", { text: t("roles.index_rights") }), field(t("roles.indices"), indices),
      el("div", { class: "checks" }, privBoxes.map((b) => el("label", { class: "check" }, b, b.value))),
      field(t("roles.grant"), grant), field(t("roles.except"), except),
      field(t("roles.query"), query), el("label", { class: "check" }, requirePurpose, t("roles.require_purpose"))),
    el("fieldset", {}, el("legend", { text: t("roles.masks") }), maskRows,
      el("button", { type: "button", id: "r-add-mask", class: "secondary", text: t("roles.add_mask"), onclick: () => { addMask(); sync(); } })),
    el("fieldset", {}, el("legend", { text: t("roles.cluster") }),
      el("div", { class: "checks" }, clusterBoxes.map((b) => el("label", { class: "check" }, b, b.value)))),
    el("fieldset", {}, el("legend", { text: t("roles.limits") }),
      el("div", { class: "checks" }, LIMIT_KEYS.map((k) => field(k, limitInputs[k])))),
    el("fieldset", {}, el("legend", { text: t("roles.json") }), json, el("p", { class: "hint", text: t("roles.json_hint") })),
    el("button", { type: "submit", id: "role-save", text: t("common.save") }), out);
  form.addEventListener("input", (event) => { if (event.target !== json) sync(); });
  form.addEventListener("change", (event) => { if (event.target !== json) sync(); });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let body;
    try {
      body = JSON.parse(json.value);
    } catch {
      status(out, t("roles.bad_json"), "error");
      return;
    }
    try {
      await call("PUT", `/_security/role/${seg(name.value.trim())}`, body);
      status(out, t("common.done"));
    } catch (error) {
      status(out, error.message, "error");
    }
    load();
  });
  replace(main, el("h1", { text: t("nav.roles") }), list, form);
  sync();
  await load();
}

// -- API keys ----------------------------------------------------------------------------------
export async function keysPage(main) {
  const list = el("section", { id: "keys-list" });
  const out = el("div", { id: "key-status" });
  const name = el("input", { id: "k-name", type: "text", required: true });
  const expiration = el("input", { id: "k-expiration", type: "text", value: "30d", size: "6" });
  const form = el("form", { id: "key-form", class: "form" }, el("h2", { text: t("keys.create") }),
    field(t("keys.name"), name), field(t("keys.expiration"), expiration),
    el("button", { type: "submit", id: "key-create", text: t("keys.create") }), out);

  async function load() {
    try {
      const found = await call("GET", "/_security/api_key");
      const keys = found.api_keys || [];
      replace(list, keys.length ? el("table", { class: "grid", id: "keys-table" },
        el("thead", {}, el("tr", {}, ["id", "name", "owner", "expiration", "state", ""].map((h) => el("th", { text: h ? t(`keys.${h}`) : "" })))),
        el("tbody", {}, keys.map((k) => el("tr", {},
          el("td", { class: "mono", text: k.id }), el("td", { text: k.name || "" }), el("td", { text: k.username || "" }),
          el("td", { text: k.expiration ? new Date(k.expiration).toLocaleString() : t("keys.never") }),
          el("td", { text: k.invalidated ? t("keys.invalidated") : t("keys.valid") }),
          el("td", {}, k.invalidated ? null : el("button", { type: "button", class: "danger", text: t("keys.invalidate"),
            onclick: async () => {
              try { await call("DELETE", "/_security/api_key", { ids: [k.id] }); status(out, t("common.done")); }
              catch (error) { status(out, error.message, "error"); }
              load();
            } })))))) : message(t("keys.none"), "hint"));
    } catch (error) {
      replace(list, message(error.message));
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const created = await call("POST", "/_security/api_key", { name: name.value.trim(), expiration: expiration.value.trim() || undefined });
      replace(out, el("div", { class: "ok", id: "key-secret" }, el("p", { text: t("keys.shown_once") }),
        el("code", { class: "mono", text: created.encoded || `${created.id}:${created.api_key}` })));
    } catch (error) {
      status(out, error.message, "error");
    }
    load();
  });
  replace(main, el("h1", { text: t("nav.keys") }), list, form);
  await load();
}
