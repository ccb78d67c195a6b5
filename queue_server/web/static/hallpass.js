// The hall pass (docs/bookings.md, "Phones in the hall"). A lobby screen or kiosk shows a QR
// code of the phone page with a pass that rotates every few minutes; a phone that scanned it
// takes a ticket that counts at once. A phone without a valid pass is offered "join the queue
// now" instead, whose place counts once checked in at the kiosk.
import { api, boot, h, t } from "./common.js";

const RETRY_MS = 30_000; // a screen that could not fetch the pass tries again this often
const EARLY_MS = 2_000; // fetch the next pass this long after the server says it rotated

/** The rotating QR code a screen of the hall shows: one element, kept across renders. */
export class HallPassCode {
  /** `onShown`: the page lays itself out again when the code appears or goes (its box moves). */
  constructor({ token, className = "hall-pass", onShown = () => {} }) {
    this.token = token;
    this.onShown = onShown;
    this.image = h("img", { id: "hall-pass-qr", alt: t("hallpass.qr_alt"), width: 200, height: 200 });
    this.caption = h("figcaption", {}, t("hallpass.caption"));
    this.element = h("figure", { class: className, id: "hall-pass", hidden: true }, this.image, this.caption);
    this.timer = null;
  }

  start() {
    if (this.token) this.fetch();
    return this;
  }

  /** Say it again in the page's current language. */
  relabel() {
    this.image.alt = t("hallpass.qr_alt");
    this.caption.textContent = t("hallpass.caption");
  }

  async fetch() {
    clearTimeout(this.timer);
    const wasHidden = this.element.hidden;
    let wait = RETRY_MS;
    try {
      const pass = await api("GET", `/api/v1/branches/${encodeURIComponent(boot.branch.id)}/hall-pass`, undefined, { token: this.token });
      this.image.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(pass.qr_svg)}`;
      this.element.dataset.pass = pass.token;
      this.element.hidden = false;
      wait = pass.rotates_in_s * 1000 + EARLY_MS;
    } catch (error) {
      // phones off, or not a device of this hall: show no code (an old code would mislead)
      if (error.status === 401 || error.status === 403 || error.status === 404) this.element.hidden = true;
    }
    if (this.element.hidden !== wasHidden) this.onShown();
    this.timer = setTimeout(() => this.fetch(), wait);
  }
}

/** The phone page's pass: its state ("valid" or a refusal's code) and the token to send. */
export const phonePass = { state: boot.hall_pass?.state ?? "hall_pass_required", token: boot.hall_pass?.token ?? null };

/** Whether a refusal from the ticket route means the pass no longer counts. */
export function passRefused(error) {
  return error?.status === 403 && String(error.code).startsWith("hall_pass_");
}

/** Where a phone without a pass joins the queue from where it is, for `serviceId`. */
export function joinAddress(serviceId) {
  const params = new URLSearchParams({ service: serviceId, join: "1", lang: document.documentElement.lang });
  return `/book/${encodeURIComponent(boot.branch.id)}?${params}`;
}

/** The notice at the top of the phone page without a valid pass: why, and what to do. */
export function joinNotice() {
  if (phonePass.state === "valid") return null;
  const off = phonePass.state === "phone_tickets_off";
  const reason = phonePass.state === "hall_pass_required" ? null : t(`error.${phonePass.state}`);
  return h("div", { class: "notice join-now", id: "join-notice", role: "status" },
    reason ? h("p", { class: "error", id: "pass-reason" }, reason) : null,
    off ? null : h("p", {}, h("strong", {}, t("hallpass.in_hall_heading")), " ", t("hallpass.in_hall")),
    h("p", {}, h("strong", {}, t("hallpass.away_heading")), " ", t("hallpass.away", { minutes: boot.hall_pass?.remote_minutes ?? 60 })));
}
