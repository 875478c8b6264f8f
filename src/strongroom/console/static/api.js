// Calls to Strongroom's REST API with the console session (cookie + CSRF token), never a password.
import { t } from "./i18n.js";

let state = null; // {user, roles, csrf_token, csrf_header, idle_timeout_seconds}
const PURPOSE_KEY = "strongroom.purpose";

export class ApiError extends Error {
  constructor(status, body) {
    const reason = body && body.error ? (body.error.reason || body.error.type || String(body.error)) : "";
    super(reason || `HTTP ${status}`);
    this.status = status;
    this.type = body && body.error ? body.error.type : undefined;
  }
}

const CONSOLE_HEADER = { "X-Strongroom-Console": "1" }; // 401s then come without a Basic password dialog

export async function loadSession() {
  const response = await fetch("/_console/session", { credentials: "same-origin", cache: "no-store",
    headers: CONSOLE_HEADER });
  if (response.status === 401) {
    toLogin();
    return null;
  }
  if (!response.ok) throw new ApiError(response.status, await body(response));
  state = await response.json();
  return state;
}

export function session() {
  return state;
}

export function toLogin() {
  window.location.assign("/_console/login");
}

// The purpose (a case number) travels with searches and record views: the audit records it.
export function purpose() {
  return sessionStorage.getItem(PURPOSE_KEY) || "";
}

export function setPurpose(value) {
  const text = (value || "").trim();
  if (text) sessionStorage.setItem(PURPOSE_KEY, text);
  else sessionStorage.removeItem(PURPOSE_KEY);
}

export function validPurpose(text) {
  return /^[\x20-\x7e]{1,256}$/.test(text);
}

async function body(response) {
  const type = response.headers.get("content-type") || "";
  if (!type.includes("json")) return null;
  try {
    return await response.json();
  } catch {
    return null;
  }
}

// call("POST", "/residents/_search", {query: …}, {purpose: true}) → parsed JSON; ApiError otherwise.
// `background`: the page's own polling, which must not keep an unattended session alive.
// `purposeText`: a purpose typed for this one call (a reveal), instead of the header's.
export async function call(method, path, payload, { withPurpose = false, background = false, purposeText } = {}) {
  const headers = { Accept: "application/json", ...CONSOLE_HEADER };
  if (background) headers["X-Strongroom-Console"] = "background";
  if (payload !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD" && state) headers[state.csrf_header] = state.csrf_token;
  if (withPurpose || purposeText !== undefined) {
    const text = purposeText !== undefined ? purposeText : purpose();
    if (text) {
      if (!validPurpose(text)) throw new ApiError(400, { error: { reason: t("purpose.invalid") } });
      headers["X-Strongroom-Purpose"] = text;
    }
  }
  const response = await fetch(path, {
    method, headers, credentials: "same-origin", cache: "no-store",
    body: payload === undefined ? undefined : JSON.stringify(payload),
  });
  const parsed = await body(response);
  if (response.status === 401) {
    toLogin();
    throw new ApiError(401, parsed);
  }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

export async function logout() {
  try {
    await call("POST", "/_console/logout");
  } finally {
    state = null;
    sessionStorage.removeItem(PURPOSE_KEY);
    toLogin();
  }
}

export function q(params) {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") search.set(k, v);
  const text = search.toString();
  return text ? `?${text}` : "";
}
