// The live view's message to everyone waiting who left a contact: a longer wait or an early
// closing, for the branch or one service. The words are the server's, in each citizen's own
// language; the manager picks which and fills in the minutes or the time. Below it, how the
// branch's recent messages fared (sent, waiting, failed), and the newest of them by kind (a
// broadcast by its title, in the page's language).
import { api, errorText, h, localized, t } from "./common.js";

const DEFAULT_MINUTES = 30;
const STATES = ["sent", "queued", "sending", "failed"];
const RECENT_SHOWN = 8;

export class BroadcastForm {
  constructor({ base, services, token = null, changed }) {
    this.base = base;
    this.services = services;
    this.token = token;
    this.changed = changed;
    this.kind = "delay";
    this.service = "";
    this.minutes = String(DEFAULT_MINUTES);
    this.closesAt = "";
    this.state = "open";
    this.result = null;
    this.error = null;
    this.counts = null; // state → how many of the branch's recent messages
    this.recent = []; // the newest messages, newest first
  }

  /** Read how the recent messages fared (called with the page's own refresh). */
  async refresh() {
    try {
      const messages = await api("GET", `${this.base}/notify/messages`, undefined, { token: this.token });
      this.counts = Object.fromEntries(STATES.map((s) => [s, messages.filter((m) => m.state === s).length]));
      this.recent = messages.slice(0, RECENT_SHOWN);
    } catch {
      this.counts = null; // an extra: the floor shows without it
      this.recent = [];
    }
  }

  async send(event) {
    event.preventDefault();
    if (this.state === "sending") return;
    this.state = "sending";
    this.error = null;
    this.result = null;
    this.changed();
    const body = { kind: this.kind, ...(this.service && { service_id: this.service }) };
    if (this.kind === "delay") body.minutes = Number(this.minutes);
    else body.closes_at = this.closesAt;
    try {
      const answer = await api("POST", `${this.base}/notify/broadcast`, body, { token: this.token });
      this.result = t("live.broadcast_sent", { n: answer.recipients });
      await this.refresh();
    } catch (error) {
      this.error = errorText(error);
    }
    this.state = "open";
    this.changed();
    document.getElementById(this.error ? "broadcast-error" : "broadcast-result")?.focus({ preventScroll: true });
  }

  element() {
    const field = (id, label, control) => h("div", { class: "field" }, h("label", { for: id }, label), control);
    const option = (value, label, selected) => h("option", { value, selected }, label);
    return h(
      "section",
      { class: "broadcast", id: "broadcast", "aria-labelledby": "broadcast-heading" },
      h("h2", { id: "broadcast-heading" }, t("live.broadcast_heading")),
      h("p", { class: "hint", id: "broadcast-hint" }, t("live.broadcast_explain")),
      h(
        "form",
        { id: "broadcast-form", onsubmit: (e) => this.send(e), "aria-describedby": "broadcast-hint" },
        field("broadcast-kind", t("live.broadcast_kind"), h("select", {
          id: "broadcast-kind",
          onchange: (e) => { this.kind = e.target.value; this.changed(); },
        }, option("delay", t("live.broadcast_delay"), this.kind === "delay"),
          option("closing", t("live.broadcast_closing"), this.kind === "closing"))),
        field("broadcast-service", t("live.broadcast_to"), h("select", {
          id: "broadcast-service",
          onchange: (e) => { this.service = e.target.value; },
        }, option("", t("live.broadcast_everyone"), this.service === ""),
          this.services.map((s) => option(s.id, localized(s.name), this.service === s.id)))),
        this.kind === "delay"
          ? field("broadcast-minutes", t("live.broadcast_minutes"), h("input", {
              id: "broadcast-minutes", type: "number", min: "5", max: "480", step: "5", required: true,
              value: this.minutes, oninput: (e) => { this.minutes = e.target.value; },
            }))
          : field("broadcast-time", t("live.broadcast_time"), h("input", {
              id: "broadcast-time", type: "time", required: true,
              value: this.closesAt, oninput: (e) => { this.closesAt = e.target.value; },
            })),
        h("button", { type: "submit", id: "broadcast-send", class: "primary", disabled: this.state === "sending" },
          t("live.broadcast_send")),
      ),
      this.result ? h("p", { id: "broadcast-result", role: "status", tabindex: "-1" }, this.result) : null,
      this.error ? h("p", { id: "broadcast-error", class: "error", role: "alert", tabindex: "-1" }, this.error) : null,
      this.counts
        ? h("p", { id: "notify-states", class: "hint" }, t("live.notify_states", {
            sent: this.counts.sent, queued: this.counts.queued + this.counts.sending, failed: this.counts.failed,
          }))
        : null,
      this.recent.length
        ? h("ul", { id: "notify-recent", "aria-label": t("live.notify_recent") },
            this.recent.map((m) => h("li", {}, messageLine(m))))
        : null,
    );
  }
}

/** One message for staff: the ticket, what it said (a broadcast by its title), by what, how it fared. */
function messageLine(message) {
  const kind = message.kind === "broadcast"
    ? t("live.notify_kind_broadcast", { title: message.title ? localized(message.title) : "" })
    : t(`live.notify_kind_${message.kind}`);
  return t("live.notify_line", {
    label: message.label ?? "",
    kind,
    channel: t(`live.notify_channel_${message.channel}`),
    state: t(`live.notify_state_${message.state}`),
  });
}
