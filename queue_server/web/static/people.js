// The people page: a manager's operators (an admin's everyone): add, change role and branch,
// the counters an operator may take, reset a password (a one-time password shown once), disable.
import { api, boot, errorText, h, languageSwitcher, loadSession, localized, onLanguageChange, session, show, signInForm, t } from "./common.js";
import { failureState, newPasswordForm, when } from "./admin.js";

const app = document.getElementById("app");
const ROLES = ["operator", "manager", "admin"];
const state = { people: [], error: null, notice: null, needsSignIn: false, needsNewPassword: false, loading: true };
const branches = new Map(boot.branches.map((b) => [b.id, b]));

async function load() {
  try {
    state.people = await api("GET", "/api/v1/people");
    Object.assign(state, { needsSignIn: false, needsNewPassword: false, error: null });
  } catch (error) {
    Object.assign(state, failureState(error));
    state.people = [];
  }
  state.loading = false;
  render();
}

/** Run a change, then say what happened and read the list again. */
async function act(call, notice) {
  try {
    const result = await call();
    state.notice = typeof notice === "function" ? notice(result) : notice;
    state.error = null;
  } catch (error) {
    state.error = errorText(error);
    state.notice = null;
  }
  await load();
}

const isAdmin = () => session.user?.role === "admin";
const branchName = (id) => (id ? localized(branches.get(id)?.name) || id : t("people.no_branch"));

function field(id, label, input) {
  return h("div", { class: "field" }, h("label", { for: id }, label), input);
}

function branchSelect(id, selected) {
  return h("select", { id, name: "branch" },
    boot.branches.map((b) => h("option", { value: b.id, selected: b.id === selected }, localized(b.name))));
}

function addForm() {
  const own = session.user?.branch;
  return h("form", {
      id: "add-person", class: "filters",
      onsubmit: (event) => {
        event.preventDefault();
        const f = event.target.elements;
        const role = isAdmin() ? f.role.value : "operator";
        const body = { username: f.username.value, password: f.password.value, role, branch: role === "admin" ? null : (isAdmin() ? f.branch.value : own) };
        act(() => api("POST", "/api/v1/users", body), t("people.added", { name: body.username }));
      },
    },
    h("h2", {}, t("people.add")),
    field("new-username", t("people.username"), h("input", { id: "new-username", name: "username", autocomplete: "off", required: true })),
    field("new-password", t("people.first_password"), h("input", { id: "new-password", name: "password", type: "password", autocomplete: "new-password", required: true })),
    isAdmin() ? field("new-role", t("people.role"), h("select", { id: "new-role", name: "role" }, ROLES.map((r) => h("option", { value: r }, t(`people.role.${r}`))))) : null,
    isAdmin() ? field("new-branch", t("people.branch"), branchSelect("new-branch", null)) : null,
    h("button", { type: "submit", class: "primary", id: "add-submit" }, t("people.add_submit")));
}

function countersEditor(person) {
  const branch = branches.get(person.branch);
  if (person.role !== "operator" || !branch) return null;
  const chosen = new Set(person.allowed_counters);
  return h("details", { class: "counters" },
    h("summary", {}, person.allowed_counters.length ? t("people.counters_some", { list: person.allowed_counters.join(", ") }) : t("people.counters_any")),
    h("form", {
        onsubmit: (event) => {
          event.preventDefault();
          const counters = [...event.target.querySelectorAll("input:checked")].map((i) => i.value);
          act(() => api("POST", `/api/v1/people/${person.id}/counters`, { counters }), t("people.counters_saved", { name: person.username }));
        },
      },
      h("fieldset", {},
        h("legend", {}, t("people.counters_legend", { name: person.username })),
        branch.counters.map((c) => h("label", { class: "check" },
          h("input", { type: "checkbox", name: "counter", value: c.id, checked: chosen.has(c.id) }),
          ` ${t("people.counter", { number: c.number })}`))),
      h("button", { type: "submit", "data-action": "save-counters" }, t("admin.save"))));
}

function roleEditor(person) {
  if (!isAdmin() || person.id === session.user?.id) return null;
  return h("form", {
      class: "inline",
      onsubmit: (event) => {
        event.preventDefault();
        const f = event.target.elements;
        const body = { role: f.role.value, branch: f.role.value === "admin" ? null : f.branch.value };
        act(() => api("POST", `/api/v1/people/${person.id}/role`, body), t("people.role_saved", { name: person.username }));
      },
    },
    h("label", { for: `role-${person.id}`, class: "visually-hidden" }, t("people.role")),
    h("select", { id: `role-${person.id}`, name: "role" }, ROLES.map((r) => h("option", { value: r, selected: r === person.role }, t(`people.role.${r}`)))),
    h("label", { for: `branch-${person.id}`, class: "visually-hidden" }, t("people.branch")),
    branchSelect(`branch-${person.id}`, person.branch),
    h("button", { type: "submit", "data-action": "save-role" }, t("people.change_role")));
}

function row(person) {
  const self = person.id === session.user?.id;
  return h("tr", { "data-username": person.username },
    h("th", { scope: "row" }, person.username),
    h("td", {}, t(`people.role.${person.role}`)),
    h("td", {}, branchName(person.branch)),
    h("td", {}, person.active ? (person.must_change_password ? t("people.must_change") : t("people.active")) : t("people.disabled")),
    h("td", {}, countersEditor(person)),
    h("td", { class: "actions" },
      roleEditor(person),
      person.active && !self
        ? h("button", { type: "button", "data-action": "reset",
            onclick: () => act(() => api("POST", `/api/v1/people/${person.id}/reset-password`),
              (r) => t("people.reset_done", { name: r.username, password: r.one_time_password })) }, t("people.reset"))
        : null,
      person.active && !self
        ? h("button", { type: "button", class: "danger", "data-action": "disable",
            onclick: () => act(() => api("POST", `/api/v1/people/${person.id}/disable`), t("people.disabled_done", { name: person.username })) }, t("people.disable"))
        : null));
}

function table() {
  if (!state.people.length) return h("p", { id: "empty" }, state.loading ? t("common.loading") : t("people.empty"));
  return h("table", { id: "people" },
    h("caption", {}, t("people.caption")),
    h("thead", {}, h("tr", {}, ["username", "role", "branch", "status", "counters", "actions"].map((c) => h("th", { scope: "col" }, t(`people.col.${c}`))))),
    h("tbody", {}, state.people.map(row)));
}

function render() {
  app.className = "admin people";
  const signedIn = session.user && !state.needsSignIn;
  show(app,
    h("header", { class: "bar" }, h("h1", {}, t("people.title"))),
    languageSwitcher(),
    state.error ? h("p", { class: "error", role: "alert", id: "error" }, state.error) : null,
    state.notice ? h("p", { class: "notice", role: "status", id: "notice" }, state.notice) : null,
    state.needsSignIn ? signInForm(() => load()) : null,
    state.needsNewPassword ? newPasswordForm(() => load()) : null,
    signedIn && !state.needsNewPassword ? table() : null,
    signedIn && !state.needsNewPassword ? addForm() : null);
}

onLanguageChange(render);
render();
loadSession().then(() => load());
