// "Tell me when my turn is near": a citizen leaves a mobile number or an e-mail address for one
// ticket, on the phone page or at the kiosk (typed on an on-screen keypad there). The value lives
// only in this form until it is sent; after that the page keeps no copy (a kiosk is shared).
import { api, currentLanguage, errorText, h, t } from "./common.js";

export { keepingFocus } from "./common.js";

const KEYPADS = {
  sms: ["123", "456", "789", "+0"],
  email: ["1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm", "@.-_"],
};
const FIELD = {
  sms: { type: "tel", inputmode: "tel", autocomplete: "tel", maxlength: 32 },
  email: { type: "email", inputmode: "email", autocomplete: "email", maxlength: 254 },
};
export const CONTACT_INPUT = "notify-contact";

export class SubscribeForm {
  /** `channels`: what the server can send (boot.notify); `keypad`: the kiosk's on-screen keys
   *  (the form starts folded behind one button there); `changed`: re-render the page. */
  constructor({ ticketId, channels, token = null, keypad = false, remember = false, changed }) {
    this.ticketId = ticketId;
    this.channels = channels.filter((c) => c in FIELD);
    this.token = token;
    this.keypad = keypad;
    this.rememberKey = remember ? `rigi.notify.${ticketId}` : null;
    this.changed = changed;
    this.channel = this.channels[0] ?? null;
    this.value = "";
    this.error = null;
    this.unfolded = !keypad;
    this.state = this.remembered() ? "done" : "open";
  }

  remembered() {
    if (!this.rememberKey) return null;
    try {
      const channel = localStorage.getItem(this.rememberKey);
      if (channel) this.channel = channel;
      return channel;
    } catch {
      return null; // private mode: the form shows again; a second subscription replaces the first
    }
  }

  type(text) {
    this.value = (this.value + text).slice(0, FIELD[this.channel].maxlength);
    this.error = null;
    this.changed();
  }

  choose(channel) {
    this.channel = channel;
    this.value = "";
    this.error = null;
    this.changed();
    document.getElementById(`notify-${channel}`)?.focus({ preventScroll: true });
  }

  async send(event) {
    event.preventDefault();
    if (!this.value.trim() || this.state === "sending") return;
    this.state = "sending";
    this.error = null;
    this.changed();
    const field = this.channel === "sms" ? "phone" : "email";
    try {
      await api(
        "POST",
        `/api/v1/tickets/${encodeURIComponent(this.ticketId)}/subscribe`,
        { [field]: this.value.trim(), language: currentLanguage() },
        { token: this.token },
      );
      this.state = "done";
      this.value = "";
      if (this.rememberKey) {
        try {
          localStorage.setItem(this.rememberKey, this.channel);
        } catch {
          // private mode
        }
      }
    } catch (error) {
      this.state = "open";
      this.error = errorText(error);
    }
    this.changed();
    document.getElementById(this.state === "done" ? "notify-done" : CONTACT_INPUT)?.focus({ preventScroll: true });
  }

  element() {
    if (!this.channel) return null;
    const heading = h("h2", { id: "notify-heading" }, t("notify.heading"));
    const section = (...children) =>
      h("section", { class: "notify", id: "notify", "aria-labelledby": "notify-heading" }, heading, ...children);
    if (this.state === "done") {
      return section(h("p", { id: "notify-done", role: "status", tabindex: "-1" }, t(`notify.done_${this.channel}`)));
    }
    if (!this.unfolded) {
      return section(h("button", {
        type: "button", id: "notify-open", class: "primary",
        onclick: () => { this.unfolded = true; this.changed(); document.getElementById(`notify-${this.channel}`)?.focus(); },
      }, t("notify.open")));
    }
    const field = FIELD[this.channel];
    return section(h(
      "form",
      { id: "notify-form", onsubmit: (e) => this.send(e), novalidate: true },
      h("p", { class: "hint", id: "notify-hint" }, t("notify.explain")),
      this.channels.length > 1
        ? h("div", { class: "notify-channels", role: "group", "aria-label": t("notify.how") },
            this.channels.map((c) => h("button", {
              type: "button", id: `notify-${c}`, class: "toggle", "aria-pressed": String(c === this.channel),
              onclick: () => this.choose(c),
            }, t(`notify.by_${c}`))))
        : null,
      h("label", { for: CONTACT_INPUT }, t(`notify.label_${this.channel}`)),
      h("input", {
        id: CONTACT_INPUT,
        type: field.type,
        // On the kiosk the on-screen keys type: no system keyboard pops over them.
        inputmode: this.keypad ? "none" : field.inputmode,
        autocomplete: this.keypad ? "off" : field.autocomplete,
        maxlength: String(field.maxlength),
        spellcheck: "false",
        dir: "ltr",
        value: this.value,
        "aria-describedby": "notify-hint",
        "aria-invalid": this.error ? "true" : null,
        oninput: (e) => { this.value = e.target.value; this.error = null; },
      }),
      this.keypad ? this.keys() : null,
      this.error ? h("p", { class: "error", id: "notify-error", role: "alert" }, this.error) : null,
      h("button", { type: "submit", id: "notify-send", class: "primary", disabled: this.state === "sending" }, t("notify.send")),
    ));
  }

  keys() {
    const key = (label, onclick, extra = {}) => h("button", { type: "button", class: "key", onclick, ...extra }, label);
    return h(
      "div",
      { class: "keyboard", id: "notify-keypad", role: "group", "aria-label": t("kiosk.keyboard") },
      KEYPADS[this.channel].map((row) =>
        h("div", { class: "key-row" }, Array.from(row, (k) => key(k, () => this.type(k), { "data-key": k })))),
      h(
        "div",
        { class: "key-row" },
        key(h("span", {}, h("span", { "aria-hidden": "true" }, "⌫ "), t("kiosk.key_erase")), () => {
          this.value = this.value.slice(0, -1);
          this.changed();
        }, { class: "key wide", id: "notify-erase" }),
        key(t("kiosk.key_clear"), () => { this.value = ""; this.changed(); }, { class: "key wide", id: "notify-clear" }),
      ),
    );
  }
}

/** The browser's own notifications (Web Push) where it has them: one tap, no number given. */
export class PushOffer {
  constructor({ ticketId, key, changed }) {
    this.ticketId = ticketId;
    this.key = key;
    this.changed = changed;
    this.state = "open"; // open | asking | done | denied | failed
    this.available = Boolean(key && "serviceWorker" in navigator && "PushManager" in window && window.isSecureContext);
  }

  async enable() {
    this.state = "asking";
    this.changed();
    try {
      if ((await Notification.requestPermission()) !== "granted") {
        this.state = "denied";
      } else {
        const scope = `/t/${encodeURIComponent(this.ticketId)}`;
        const registration = await navigator.serviceWorker.register("/sw.js", { scope });
        const subscription = await registration.pushManager.subscribe({
          userVisibleOnly: true,
          applicationServerKey: base64UrlBytes(this.key),
        });
        await api("POST", `/api/v1/tickets/${encodeURIComponent(this.ticketId)}/subscribe`, {
          push: subscription.toJSON(),
          language: currentLanguage(),
        });
        this.state = "done";
      }
    } catch {
      this.state = "failed";
    }
    this.changed();
    document.getElementById("push-state")?.focus({ preventScroll: true });
  }

  element() {
    if (!this.available) return null;
    if (this.state === "open" || this.state === "asking") {
      return h("button", {
        type: "button", id: "push-enable", class: "secondary", disabled: this.state === "asking",
        onclick: () => this.enable(),
      }, t("notify.push"));
    }
    return h("p", { id: "push-state", role: "status", tabindex: "-1" }, t(`notify.push_${this.state}`));
  }
}

function base64UrlBytes(text) {
  const padded = (text + "===".slice((text.length + 3) % 4)).replaceAll("-", "+").replaceAll("_", "/");
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}
