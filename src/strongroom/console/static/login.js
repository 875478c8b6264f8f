// Login page: the password goes once to POST /_console/login; the session cookie is HttpOnly.
import { applyI18n, languageSwitchInto, t } from "./i18n.js";

const form = document.getElementById("login-form");
const error = document.getElementById("login-error");
const button = document.getElementById("login-button");

applyI18n(document);
languageSwitchInto(document.getElementById("lang-switch"));

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.hidden = true;
  button.disabled = true;
  try {
    const response = await fetch("/_console/login", {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-Strongroom-Console": "1" },
      body: JSON.stringify({ username: form.username.value, password: form.password.value }),
    });
    if (response.ok) {
      form.password.value = "";
      window.location.assign("/_console/search");
      return;
    }
    error.textContent = response.status === 429 ? t("login.throttled") : t("login.failed");
  } catch {
    error.textContent = t("login.unreachable");
  } finally {
    button.disabled = false;
  }
  error.hidden = false;
});
