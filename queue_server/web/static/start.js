// The start page at `/`: every branch, halls first, with the way to each of its pages. A list to
// filter rather than a map: the 85 Community Centres are found by typing a village or town.
import { boot, h, languageSwitcher, localized, onLanguageChange, show, t } from "./common.js";

const app = document.getElementById("app");
const state = { query: "" };

function fold(text) {
  return (text || "").toLocaleLowerCase().normalize("NFKD").replace(/\p{M}/gu, "");
}

function branchItem(branch) {
  const id = encodeURIComponent(branch.id);
  const link = (page, label) => h("a", { href: `/${page}/${id}`, class: `to-${page}` }, t(label));
  return h(
    "li",
    { class: "branch-item", "data-branch": branch.id },
    h("h3", {}, localized(branch.name)),
    branch.municipality ? h("p", { class: "hint" }, branch.municipality) : null,
    h(
      "p",
      { class: "links" },
      link("kiosk", "start.kiosk"),
      link("display", "start.display"),
      link("console", "start.console"),
      link("live", "start.live"),
    ),
  );
}

function render() {
  const query = fold(state.query.trim());
  const shown = boot.branches.filter(
    (b) => !query || [...Object.values(b.name), b.municipality].some((text) => fold(text).includes(query)),
  );
  const halls = shown.filter((b) => b.kind === "hall");
  const centres = shown.filter((b) => b.kind !== "hall");
  app.className = "start";
  show(
    app,
    h("header", { class: "bar" }, h("h1", {}, t("start.heading"))),
    languageSwitcher(),
    h("p", {}, t("start.lead")),
    h("nav", { class: "links network-links", "aria-label": t("start.more") },
      h("a", { href: "/book", class: "to-book" }, t("start.book")),
      h("a", { href: "/national", class: "to-national" }, t("start.national")),
      h("a", { href: "/reports", class: "to-reports" }, t("start.reports")),
      h("a", { href: "/admin/people", class: "to-admin" }, t("start.admin"))),
    h(
      "div",
      { class: "field search-field" },
      h("label", { for: "branch-search" }, t("start.search")),
      h("input", {
        id: "branch-search",
        type: "search",
        autocomplete: "off",
        value: state.query,
        oninput: (event) => {
          state.query = event.target.value;
          render();
          const again = document.getElementById("branch-search");
          again.focus();
          again.setSelectionRange(again.value.length, again.value.length);
        },
      }),
    ),
    halls.length
      ? h("section", { "aria-labelledby": "halls-heading" },
          h("h2", { id: "halls-heading" }, t("start.halls")),
          h("ul", { class: "branch-list" }, halls.map(branchItem)))
      : null,
    centres.length
      ? h("section", { "aria-labelledby": "centres-heading" },
          h("h2", { id: "centres-heading" }, t("start.centres", { n: centres.length })),
          h("ul", { class: "branch-list" }, centres.map(branchItem)))
      : null,
    shown.length ? null : h("p", { class: "empty", role: "status" }, t("start.no_match")),
  );
}

onLanguageChange(render);
render();
