// Shared by the people and devices pages: the signed-out / must-change-password states and the
// form that sets a new password after a reset (POST /api/v1/session/password).
import { api, errorText, h, session, t } from "./common.js";

/** What a failed API read means for the page: sign in, choose a new password, or an error. */
export function failureState(error) {
  if (error.status === 401) return { needsSignIn: true, needsNewPassword: false, error: null };
  if (error.code === "password_change_required") return { needsSignIn: false, needsNewPassword: true, error: null };
  return { needsSignIn: false, needsNewPassword: false, error: errorText(error) };
}

/** The form a person with a reset password fills before anything else; `done()` after. */
export function newPasswordForm(done) {
  const error = h("p", { class: "error", role: "alert", id: "password-error", hidden: true });
  const field = (name, label) =>
    h("div", { class: "field" },
      h("label", { for: name }, label),
      h("input", { id: name, name, type: "password", autocomplete: name === "old-password" ? "current-password" : "new-password", required: true }));
  return h("form", {
      id: "choose-password", class: "signin",
      onsubmit: async (event) => {
        event.preventDefault();
        const form = event.target;
        try {
          const data = await api("POST", "/api/v1/session/password", {
            old: form.elements["old-password"].value, new: form.elements["chosen-password"].value,
          });
          session.user = data.user;
          session.csrf = data.csrf_token;
          done();
        } catch (failure) {
          error.hidden = false;
          error.textContent = errorText(failure);
        }
      },
    },
    h("h2", {}, t("admin.new_password")),
    h("p", {}, t("admin.new_password_why")),
    error,
    field("old-password", t("admin.old_password")),
    field("chosen-password", t("admin.new_password_field")),
    h("button", { type: "submit", class: "primary", id: "choose-password-submit" }, t("admin.save")));
}

export function when(iso) {
  if (!iso) return "—";
  return new Date(iso).toLocaleString(document.documentElement.lang, { timeZone: "Asia/Tbilisi", hour12: false });
}

/** An organisation page's save: POST `body` to `path`, then keep in `state` the fields refused
 *  (or what was saved), read the page's data again with `load`, and move focus to the outcome. */
export async function saveOrganisation(state, load, what, path, body) {
  try {
    await api("POST", path, body);
    Object.assign(state, { error: null, fields: [], saved: what });
  } catch (error) {
    Object.assign(state, { error: errorText(error), fields: error.details?.fields ?? [], saved: null });
  }
  await load();
  document.getElementById(state.error ? "error" : "saved")?.focus();
}

/** What an organisation page just saved, with the organisation's new version (focused after a
 *  save, so a screen reader hears it); nothing after a refusal. */
export function savedNotice(state) {
  if (!state.saved || state.error) return null;
  return h("p", { id: "saved", class: "saved", role: "status", tabindex: "-1", "data-what": state.saved },
    t("branch.saved", { version: state.data?.version ?? "" }));
}

/** What an organisation page's last save was refused for: the message and each field refused
 *  (focused after the save, as `savedNotice` is). */
export function refusalNotice(state) {
  if (!state.error) return null;
  return h("div", { class: "error", role: "alert", id: "error", tabindex: "-1" },
    h("p", {}, state.error),
    state.fields.length ? h("ul", { id: "error-fields" }, state.fields.map((f) => h("li", {}, h("code", {}, f.field), ` — ${f.problem}`))) : null);
}
