// The devices page: a branch's kiosks, displays and printer agents with when each was last seen
// and its printers' health; add one (its token, setup link and QR code are shown once); revoke.
import { api, boot, errorText, h, languageSwitcher, loadSession, localized, onLanguageChange, session, show, signInForm, t } from "./common.js";
import { failureState, newPasswordForm, when } from "./admin.js";

const app = document.getElementById("app");
const ROLES = ["kiosk", "display", "printer"];
const state = { branch: null, devices: [], created: null, error: null, needsSignIn: false, needsNewPassword: false, loading: true };

function branchId() {
  return state.branch ?? session.user?.branch ?? boot.branches[0]?.id;
}

async function load() {
  try {
    state.devices = await api("GET", `/api/v1/branches/${encodeURIComponent(branchId())}/devices`);
    Object.assign(state, { needsSignIn: false, needsNewPassword: false, error: null });
  } catch (error) {
    Object.assign(state, failureState(error));
    state.devices = [];
  }
  state.loading = false;
  render();
}

function health(device) {
  if (device.revoked_at) return t("devices.revoked");
  const printers = device.health?.printers;
  if (!printers) return "—";
  if (!printers.length) return t("devices.no_printer");
  return printers.map((p) => {
    const status = !p.connected ? t("devices.printer_offline") : p.paper === "out" ? t("devices.paper_out") : p.online === false ? t("devices.printer_off") : t("devices.printer_ok");
    return `${p.id}: ${status}`;
  }).join("; ");
}

async function revoke(device) {
  try {
    await api("POST", `/api/v1/devices/${device.id}/revoke`);
    state.error = null;
  } catch (error) {
    state.error = errorText(error);
  }
  await load();
}

function createForm() {
  return h("form", {
      id: "add-device", class: "filters",
      onsubmit: async (event) => {
        event.preventDefault();
        const f = event.target.elements;
        try {
          state.created = await api("POST", `/api/v1/branches/${encodeURIComponent(branchId())}/devices`, { role: f.role.value, name: f.name.value });
          state.error = null;
        } catch (error) {
          state.error = errorText(error);
        }
        await load();
        document.getElementById("created")?.focus();
      },
    },
    h("h2", {}, t("devices.add")),
    h("div", { class: "field" }, h("label", { for: "device-role" }, t("devices.role")),
      h("select", { id: "device-role", name: "role" }, ROLES.map((r) => h("option", { value: r }, t(`devices.role.${r}`))))),
    h("div", { class: "field" }, h("label", { for: "device-name" }, t("devices.name")),
      h("input", { id: "device-name", name: "name", required: true, maxlength: 100 })),
    h("button", { type: "submit", class: "primary", id: "device-submit" }, t("devices.add_submit")));
}

function created() {
  const c = state.created;
  if (!c) return null;
  return h("section", { id: "created", class: "created", tabindex: "-1", "aria-labelledby": "created-title" },
    h("h2", { id: "created-title" }, t("devices.created", { name: c.device.name })),
    h("p", {}, t("devices.shown_once")),
    h("p", {}, t("devices.token"), " ", h("code", { id: "created-token" }, c.token)),
    c.setup_url ? h("p", {}, t("devices.setup_link"), " ", h("a", { id: "setup-link", href: c.setup_url, target: "_blank", rel: "noopener" }, c.setup_url)) : h("p", {}, t("devices.printer_setup")),
    c.setup_qr_svg ? h("img", { id: "setup-qr", class: "qr", alt: t("devices.qr_alt", { name: c.device.name }), src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(c.setup_qr_svg)}` }) : null,
    h("button", { type: "button", id: "created-done", onclick: () => { state.created = null; render(); } }, t("devices.done")));
}

function table() {
  if (!state.devices.length) return h("p", { id: "empty" }, state.loading ? t("common.loading") : t("devices.empty"));
  return h("table", { id: "devices" },
    h("caption", {}, t("devices.caption")),
    h("thead", {}, h("tr", {}, ["name", "role", "created", "last_seen", "health", "actions"].map((c) => h("th", { scope: "col" }, t(`devices.col.${c}`))))),
    h("tbody", {}, state.devices.map((d) => h("tr", { "data-name": d.name },
      h("th", { scope: "row" }, d.name),
      h("td", {}, t(`devices.role.${d.role}`)),
      h("td", {}, when(d.created_at)),
      h("td", {}, d.last_seen_at ? when(d.last_seen_at) : t("devices.never")),
      h("td", {}, health(d)),
      h("td", {}, d.revoked_at ? null : h("button", { type: "button", class: "danger", "data-action": "revoke", onclick: () => revoke(d) }, t("devices.revoke")))))));
}

function branchPicker() {
  if (session.user?.role !== "admin") return null;
  return h("div", { class: "field" }, h("label", { for: "branch" }, t("people.branch")),
    h("select", { id: "branch", onchange: (e) => { state.branch = e.target.value; state.created = null; load(); } },
      boot.branches.map((b) => h("option", { value: b.id, selected: b.id === branchId() }, localized(b.name)))));
}

function render() {
  app.className = "admin devices";
  const signedIn = session.user && !state.needsSignIn && !state.needsNewPassword;
  show(app,
    h("header", { class: "bar" }, h("h1", {}, t("devices.title"))),
    languageSwitcher(),
    state.error ? h("p", { class: "error", role: "alert", id: "error" }, state.error) : null,
    state.needsSignIn ? signInForm(() => load()) : null,
    state.needsNewPassword ? newPasswordForm(() => load()) : null,
    signedIn ? branchPicker() : null,
    signedIn ? created() : null,
    signedIn ? table() : null,
    signedIn ? createForm() : null);
}

onLanguageChange(render);
render();
loadSession().then(() => load());
