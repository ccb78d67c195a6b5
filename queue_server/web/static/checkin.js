// The kiosk's check-in: a booked or remote citizen scans the QR from their phone (a scanner
// types it like a keyboard) or types the short code; the kiosk prints the ticket it becomes.
import { api, errorText, h, t } from "./common.js";

const TIME = { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: "Asia/Tbilisi" };
// What is typed survives the kiosk redrawing its screen (the served-now refresh, a language).
let typed = "";

/** The refusal in the citizen's language; "too early" says when to come back. */
function refusal(error) {
  if (error.code === "too_early" && error.details?.come_back_at) {
    const time = new Intl.DateTimeFormat("en-GB", TIME).format(new Date(error.details.come_back_at));
    return t("kiosk.come_back_at", { time });
  }
  return errorText(error);
}

/** The form; `done(ticket)` shows the ticket, `failed(text)` the refusal. */
export function checkInForm(branchId, token, done, failed) {
  return h(
    "form",
    {
      class: "check-in",
      id: "check-in",
      onsubmit: async (event) => {
        event.preventDefault();
        const input = event.target.elements.code;
        try {
          const answer = await api(
            "POST",
            `/api/v1/branches/${encodeURIComponent(branchId)}/check-in`,
            { code: input.value.trim() },
            { token },
          );
          typed = "";
          done(answer.ticket);
        } catch (error) {
          failed(refusal(error));
        }
      },
    },
    h("label", { for: "booking-code" }, t("kiosk.have_booking")),
    h("div", { class: "search-row" },
      h("input", { id: "booking-code", name: "code", required: true, autocomplete: "off", spellcheck: "false",
        maxlength: 256, "aria-describedby": "booking-code-hint", value: typed,
        oninput: (event) => { typed = event.target.value; } }),
      h("button", { type: "submit", class: "primary", id: "check-in-submit" }, t("kiosk.check_in"))),
    h("small", { id: "booking-code-hint", class: "hint" }, t("kiosk.check_in_hint")),
  );
}
