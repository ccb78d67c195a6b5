// A page a citizen reaches by a stale or mistyped link: what happened, in their language, and the
// way back to the start page.
import { boot, h, languageSwitcher, onLanguageChange, show, t } from "./common.js";

const app = document.getElementById("app");

function render() {
  const code = boot.error?.code ?? "error";
  const key = `error.${code}`;
  app.className = "error-page";
  show(
    app,
    h("header", { class: "bar" }, h("h1", {}, t("error_page.heading"))),
    languageSwitcher(),
    h("p", { class: "error", id: "error-text" }, t(key) === key ? t("error.error") : t(key)),
    h("p", {}, t(code === "unknown_ticket" ? "error_page.ticket_hint" : "error_page.hint")),
    h("p", {}, h("a", { href: "/", id: "home" }, t("error_page.home"))),
  );
}

onLanguageChange(render);
render();
