// The services and agencies page, for administrators: every service's names in the five
// languages, letter, agency, targets, category, the documents to bring and the "can be done
// online" link; every agency's names. Saved through POST /api/v1/services/{id} and
// /api/v1/agencies/{id}: checked whole by the server, refused with the field named, and pushed
// live to every kiosk that offers the service.
import { api, boot, errorText, h, languageSwitcher, loadSession, localized, onLanguageChange, session, show, signInForm, t } from "./common.js";
import { failureState, newPasswordForm, refusalNotice, savedNotice, saveOrganisation } from "./admin.js";

const app = document.getElementById("app");
const LANGS = ["ka", "en", "ru", "az", "hy"];
const state = { data: null, chosen: null, error: null, fields: [], saved: null, needsSignIn: false, needsNewPassword: false };

async function load() {
  try {
    state.data = await api("GET", "/api/v1/organisation");
    Object.assign(state, { needsSignIn: false, needsNewPassword: false });
    state.chosen ??= state.data.services[0]?.id ?? null;
  } catch (error) {
    Object.assign(state, failureState(error));
    state.data = null;
  }
  render();
}

/** Save one part; the page shows the fields refused, or what was saved, and reads again. */
function save(what, path, body) {
  return saveOrganisation(state, load, what, path, body);
}

const clean = (object) => Object.fromEntries(Object.entries(object).filter(([, v]) => v !== "" && v !== null && v !== undefined));

function field(id, label, input) {
  return h("div", { class: "field" }, h("label", { for: id }, label), input);
}

function namesFields(prefix, names) {
  return LANGS.map((lang) => field(`${prefix}-name-${lang}`, t("services.name_in", { language: boot.languages.find((l) => l.code === lang)?.name ?? lang }),
    h("input", { id: `${prefix}-name-${lang}`, lang, value: names?.[lang] ?? "", required: lang === "ka" || lang === "en" })));
}

function readNames(prefix) {
  return clean(Object.fromEntries(LANGS.map((lang) => [lang, document.getElementById(`${prefix}-name-${lang}`).value.trim()])));
}

function servicesTable() {
  const agencies = new Map(state.data.agencies.map((a) => [a.id, a]));
  return h("table", { id: "services" },
    h("caption", {}, t("services.caption")),
    h("thead", {}, h("tr", {}, ["letter", "name", "agency", "target", "time", "online", "edit"].map((c) => h("th", { scope: "col" }, t(`services.col.${c}`))))),
    h("tbody", {}, state.data.services.map((s) => h("tr", { "data-service": s.id },
      h("td", {}, s.letter),
      h("th", { scope: "row" }, localized(s.name)),
      h("td", {}, localized(agencies.get(s.agency)?.name)),
      h("td", {}, String(s.target_wait_min)),
      h("td", {}, String(s.service_time_min)),
      h("td", {}, s.online_url ? t("services.yes") : "—"),
      h("td", {}, h("button", { type: "button", "data-action": "edit", onclick: () => { state.chosen = s.id; render(); document.getElementById("service-form")?.scrollIntoView(); } }, t("services.edit")))))));
}

function serviceForm() {
  const service = state.data.services.find((s) => s.id === state.chosen) ?? { id: "", name: {}, documents: [] };
  const documents = (service.documents ?? []).map((d) => `${d.ka ?? ""} | ${d.en ?? ""}`).join("\n");
  return h("form", {
      id: "service-form", class: "section",
      onsubmit: (event) => {
        event.preventDefault();
        const f = event.target.elements;
        const id = f["service-id"].value.trim();
        const docs = f["service-documents"].value.split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
          const [ka, en] = line.split("|").map((p) => p.trim());
          return clean({ ka, en: en || ka });
        });
        const body = clean({
          agency: f["service-agency"].value, letter: f["service-letter"].value.trim(),
          target_wait_min: Number(f["service-target"].value), service_time_min: Number(f["service-time"].value),
          category: f["service-category"].value, popularity: service.popularity,
          online_url: f["service-online"].value.trim(), name: readNames("service"),
        });
        if (docs.length) body.documents = docs;
        state.chosen = id;
        save("service", `/api/v1/services/${encodeURIComponent(id)}`, body);
      },
    },
    h("h2", {}, t("services.edit_title")),
    field("service-id", t("services.id"), h("input", { id: "service-id", value: service.id, required: true, pattern: "[a-z][a-z0-9_]*" })),
    namesFields("service", service.name),
    field("service-agency", t("services.col.agency"), h("select", { id: "service-agency" },
      state.data.agencies.map((a) => h("option", { value: a.id, selected: a.id === service.agency }, localized(a.name))))),
    field("service-letter", t("services.col.letter"), h("input", { id: "service-letter", value: service.letter ?? "", maxlength: 1, required: true })),
    field("service-target", t("services.target"), h("input", { id: "service-target", type: "number", min: 1, max: 480, value: service.target_wait_min ?? 15, required: true })),
    field("service-time", t("services.time"), h("input", { id: "service-time", type: "number", min: 1, max: 480, step: "0.5", value: service.service_time_min ?? 5, required: true })),
    field("service-category", t("services.category"), h("select", { id: "service-category" },
      ["quick", "long"].map((c) => h("option", { value: c, selected: c === service.category }, t(`services.category.${c}`))))),
    field("service-online", t("services.online"), h("input", { id: "service-online", type: "url", value: service.online_url ?? "", placeholder: "https://" })),
    field("service-documents", t("services.documents"), h("textarea", { id: "service-documents", rows: 4 }, documents)),
    h("button", { type: "submit", class: "primary", id: "save-service" }, t("admin.save")));
}

function agenciesForm() {
  return h("section", { class: "section", "aria-labelledby": "agencies-title" },
    h("h2", { id: "agencies-title" }, t("services.agencies")),
    state.data.agencies.map((agency) => h("form", {
        class: "agency", "data-agency": agency.id,
        onsubmit: (event) => {
          event.preventDefault();
          save("agency", `/api/v1/agencies/${encodeURIComponent(agency.id)}`, clean({ name: readNames(`agency-${agency.id}`), private: agency.private }));
        },
      },
      h("h3", {}, localized(agency.name)),
      namesFields(`agency-${agency.id}`, agency.name),
      h("button", { type: "submit" }, t("admin.save")))));
}

function render() {
  app.className = "admin services-admin";
  const signedIn = session.user && !state.needsSignIn && !state.needsNewPassword;
  const ready = signedIn && state.data;
  show(app,
    h("header", { class: "bar" }, h("h1", {}, t("services.title"))),
    languageSwitcher(),
    refusalNotice(state),
    savedNotice(state),
    state.needsSignIn ? signInForm(() => load()) : null,
    state.needsNewPassword ? newPasswordForm(() => load()) : null,
    ready ? serviceForm() : null,
    ready ? servicesTable() : null,
    ready ? agenciesForm() : null);
}

onLanguageChange(render);
render();
loadSession().then(() => load());
