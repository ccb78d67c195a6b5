// The audit page: who did what, when, at a manager's branch (or, for an admin, any branch),
// filtered by branch, person, device, kind of action and period, paged, and as a CSV download.
import { api, boot, h, languageSwitcher, loadSession, localized, onLanguageChange, session, show, signInForm, t } from "./common.js";

const app = document.getElementById("app");
const FILTERS = ["branch", "person", "device", "kind", "from", "to"];
const KINDS = ["counter", "ticket", "user", "device", "print", "room"];
const state = { filters: {}, entries: [], nextBefore: null, error: null, needsSignIn: false, loading: false };
const branchNames = new Map(boot.branches.map((b) => [b.id, b.name]));

function query(extra = {}) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries({ ...state.filters, ...extra })) {
    if (value !== undefined && value !== null && value !== "") params.set(key, value);
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

async function load(more = false) {
  state.loading = true;
  try {
    const page = await api("GET", `/api/v1/audit${query(more ? { before: state.nextBefore } : {})}`);
    state.entries = more ? state.entries.concat(page.entries) : page.entries;
    state.nextBefore = page.next_before;
    state.error = null;
    state.needsSignIn = false;
  } catch (error) {
    state.needsSignIn = error.status === 401;
    state.error = error.status === 0 ? t("common.offline") : error.message || t("audit.failed");
    if (!more) state.entries = [];
  } finally {
    state.loading = false;
  }
  render();
}

function when(iso) {
  return new Date(iso).toLocaleString(document.documentElement.lang, { timeZone: "Asia/Tbilisi", hour12: false });
}

function detailText(detail) {
  return Object.entries(detail).map(([k, v]) => `${k}: ${v}`).join(", ");
}

function filterForm() {
  const isAdmin = session.user?.role === "admin";
  const field = (name, input) => h("div", { class: "field" }, h("label", { for: `filter-${name}` }, t(`audit.${name}`)), input);
  const text = (name, type = "text") =>
    field(name, h("input", { id: `filter-${name}`, name, type, value: state.filters[name] ?? "" }));
  return h("form", {
      id: "filters", class: "filters",
      onsubmit: (event) => {
        event.preventDefault();
        const form = event.target;
        state.filters = Object.fromEntries(FILTERS.map((f) => [f, form.elements[f]?.value ?? ""]));
        load();
      },
    },
    isAdmin
      ? field("branch", h("select", { id: "filter-branch", name: "branch" },
          h("option", { value: "" }, t("audit.all_branches")),
          boot.branches.map((b) => h("option", { value: b.id, selected: state.filters.branch === b.id }, localized(b.name)))))
      : null,
    text("person"),
    text("device"),
    field("kind", h("select", { id: "filter-kind", name: "kind" },
      h("option", { value: "" }, t("audit.all_kinds")),
      KINDS.map((k) => h("option", { value: k, selected: state.filters.kind === k }, t(`audit.kind.${k}`))))),
    text("from", "date"),
    text("to", "date"),
    h("button", { type: "submit", class: "primary", id: "apply" }, t("audit.apply")),
    h("a", { id: "csv", class: "button", href: `/api/v1/audit.csv${query()}`, download: "audit.csv" }, t("audit.csv")));
}

function table() {
  if (!state.entries.length) return h("p", { id: "empty" }, state.loading ? t("common.loading") : t("audit.empty"));
  return h("table", { id: "entries" },
    h("caption", {}, t("audit.caption")),
    h("thead", {}, h("tr", {}, ["at", "branch", "who", "kind", "target", "detail"].map((c) => h("th", { scope: "col" }, t(`audit.col.${c}`))))),
    h("tbody", {}, state.entries.map((e) => h("tr", { "data-id": e.id },
      h("td", {}, when(e.at)),
      h("td", {}, e.branch ? localized(branchNames.get(e.branch)) ?? e.branch : "—"),
      h("td", {}, e.actor),
      h("td", {}, e.kind),
      h("td", {}, e.target ?? "—"),
      h("td", {}, detailText(e.detail))))));
}

function render() {
  app.className = "audit";
  show(app,
    h("header", { class: "bar" }, h("h1", {}, t("audit.title"))),
    languageSwitcher(),
    state.error ? h("p", { class: "error", role: "alert", id: "error" }, state.error) : null,
    state.needsSignIn && !session.user ? signInForm(() => load()) : null,
    session.user ? filterForm() : null,
    session.user ? table() : null,
    state.nextBefore ? h("button", { type: "button", id: "more", onclick: () => load(true) }, t("audit.more")) : null);
}

onLanguageChange(render);
render();
loadSession().then(() => load());
