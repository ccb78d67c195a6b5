// The phone booking page. `/book`: pick a branch. `/book/{branch}`: service → day → free slot →
// phone or e-mail → the one-time code → the booking, with its check-in code and QR. The page's
// address then carries the booking's token in its fragment (never sent to the server), so the
// same link moves or cancels it. Every rule (limits, codes, slots) is the server's.
import { api, boot, errorText, h, languageSwitcher, localized, onLanguageChange, show, t } from "./common.js";
import { bookableDays as calendarDays, dayOf as calendarDay, plusMinutes, timeOf as calendarTime } from "./calendar.js";
import { rankServices, searchIndex } from "./search.js";

const app = document.getElementById("app");
const rules = boot.booking ?? {};
const state = {
  step: boot.branch ? "service" : "branches",
  query: "",
  service: null,
  day: null,
  slots: null,
  contact: "",
  pending: null,
  booking: null,
  moving: false,
  remote: false,
  askCancel: false,
  qr: null,
  error: null,
  busy: false,
};
const services = new Map((boot.services ?? []).map((s) => [s.id, s]));
const agencies = new Map((boot.agencies ?? []).map((a) => [a.id, a]));
const index = (boot.services ?? []).map((s) => searchIndex(s, agencies.get(s.agency)?.name));
const byUse = [...(boot.services ?? [])].sort((a, b) => (b.popularity ?? 0) - (a.popularity ?? 0));

function lang() {
  return document.documentElement.lang;
}

const timeOf = (iso) => calendarTime(iso, rules.timezone);
const dayOf = (iso) => calendarDay(iso, rules.timezone);
const bookableDays = () => calendarDays(rules);

// ---- the booking in the address (its fragment) ------------------------------------------------

function remember(booking) {
  const params = new URLSearchParams({ booking: booking.token, service: booking.service_id });
  if (booking.short_code) params.set("code", booking.short_code);
  if (booking.kind === "remote") params.set("kind", "remote");
  history.replaceState(null, "", `${location.pathname}${location.search}#${params}`);
}

function fromAddress() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("booking");
  const parts = token?.split(".") ?? [];
  // id.branch.slot.signature, or id.branch.slot.service.language.signature (the form a branch
  // node can check in from alone; docs/offline.md)
  if (![4, 6].includes(parts.length) || !/^\d+$/.test(parts[2])) return null;
  return {
    id: parts[0],
    branch_id: parts[1],
    service_id: params.get("service") ?? (parts.length === 6 ? parts[3] : null),
    slot: new Date(Number(parts[2]) * 1000).toISOString(),
    token,
    short_code: params.get("code"),
    kind: params.get("kind") ?? "slot",
    status: "confirmed",
  };
}

// ---- talking to the server ------------------------------------------------------------------

async function attempt(work) {
  state.error = null;
  state.busy = true;
  render();
  try {
    await work();
  } catch (error) {
    state.error = error;
  }
  state.busy = false;
  render();
  document.querySelector("[role=alert], h2")?.focus();
}

const branchPath = () => `/api/v1/branches/${encodeURIComponent(boot.branch.id)}`;
const bookingPath = (suffix) => `/api/v1/bookings/${encodeURIComponent(state.booking.id)}/${suffix}`;

function chooseDay(day) {
  state.day = day;
  state.slots = null;
  state.step = "slot";
  return attempt(async () => {
    const query = new URLSearchParams({ date: day });
    state.slots = await api("GET", `${branchPath()}/services/${encodeURIComponent(state.service.id)}/slots?${query}`);
  });
}

function chooseSlot(slot) {
  state.remote = false;
  if (!state.moving) {
    state.slot = slot;
    state.step = "contact";
    render();
    document.getElementById("contact")?.focus();
    return null;
  }
  return attempt(async () => {
    await showBooking(await api("POST", bookingPath("reschedule"), { token: state.booking.token, slot }));
    state.moving = false;
  });
}

function sendCode(event) {
  event.preventDefault();
  state.contact = event.target.elements.contact.value.trim();
  return attempt(async () => {
    const what = { service: state.service.id, contact: state.contact, language: lang() };
    state.pending = state.remote
      ? await api("POST", `${branchPath()}/remote`, what)
      : await api("POST", `${branchPath()}/bookings`, { ...what, slot: state.slot });
    state.step = "code";
  });
}

function confirmCode(event) {
  event.preventDefault();
  const code = event.target.elements.code.value.replace(/\D/g, "");
  return attempt(async () => {
    const booking = await api("POST", `/api/v1/bookings/${encodeURIComponent(state.pending.id)}/confirm`, { code });
    await showBooking(booking);
  });
}

async function showBooking(booking) {
  state.booking = booking;
  state.service = services.get(booking.service_id) ?? state.service;
  state.step = booking.status === "cancelled" ? "cancelled" : "done";
  if (state.step === "cancelled") return;
  remember(booking);
  const response = await fetch(bookingPath("qr"), {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token: booking.token }),
  });
  state.qr = response.ok ? `data:image/svg+xml;charset=utf-8,${encodeURIComponent(await response.text())}` : null;
}

function cancelBooking() {
  return attempt(async () => {
    await api("POST", bookingPath("cancel"), { token: state.booking.token });
    state.step = "cancelled";
    state.askCancel = false;
    history.replaceState(null, "", location.pathname + location.search);
  });
}

// ---- the steps --------------------------------------------------------------------------------

function back(step) {
  return h("button", { type: "button", class: "secondary back", onclick: () => go(step) }, t("book.back"));
}

function go(step) {
  state.error = null;
  state.step = step;
  render();
  document.querySelector("h2")?.focus();
}

function heading(key, vars) {
  return h("h2", { tabindex: "-1", id: "step-heading" }, t(key, vars));
}

function branchesStep() {
  const query = state.query.trim().toLocaleLowerCase();
  const shown = boot.branches.filter(
    (b) => !query || [...Object.values(b.name), b.municipality].some((x) => (x || "").toLocaleLowerCase().includes(query)),
  );
  return [
    heading("book.choose_branch"),
    h(
      "div",
      { class: "field" },
      h("label", { for: "branch-search" }, t("start.search")),
      h("input", { id: "branch-search", type: "search", autocomplete: "off", value: state.query, oninput: (e) => {
        state.query = e.target.value;
        render();
        const again = document.getElementById("branch-search");
        again.focus();
        again.setSelectionRange(again.value.length, again.value.length);
      } }),
    ),
    h("ul", { class: "choices" }, shown.map((b) =>
      h("li", {}, h("a", { class: "choice", href: `/book/${encodeURIComponent(b.id)}`, "data-branch": b.id },
        localized(b.name), b.municipality ? h("small", {}, b.municipality) : null)))),
  ];
}

function serviceStep() {
  const found = state.query.trim() ? rankServices(index, state.query) : byUse;
  return [
    heading("book.choose_service"),
    h(
      "div",
      { class: "field" },
      h("label", { for: "service-search" }, t("book.search_service")),
      h("input", { id: "service-search", type: "search", autocomplete: "off", value: state.query, oninput: (e) => {
        state.query = e.target.value;
        render();
        const again = document.getElementById("service-search");
        again.focus();
        again.setSelectionRange(again.value.length, again.value.length);
      } }),
    ),
    h("ul", { class: "choices" }, found.map((s) =>
      h("li", {}, h("button", { type: "button", class: "choice", "data-service": s.id, onclick: () => {
        state.service = s;
        go("day");
      } }, localized(s.name), h("small", {}, localized(agencies.get(s.agency)?.name)))))),
    found.length ? null : h("p", { class: "empty", role: "status" }, t("book.no_service")),
  ];
}

function dayStep() {
  const today = !state.moving && bookableDays()[0] === rules.today;
  return [
    heading(state.moving ? "book.move_day" : "book.choose_day"),
    h("p", { class: "chosen" }, localized(state.service.name)),
    today
      ? h("div", { class: "notice join-now" },
          h("p", {}, t("book.join_lead", { minutes: rules.remote_minutes })),
          h("button", { type: "button", class: "primary", id: "join-now", onclick: () => {
            state.remote = true;
            go("contact");
          } }, t("book.join_now")))
      : null,
    h("ul", { class: "choices days" }, bookableDays().map((day) =>
      h("li", {}, h("button", { type: "button", class: "choice", "data-day": day, onclick: () => chooseDay(day) },
        dayOf(`${day}T12:00:00Z`))))),
    back(state.moving ? "done" : "service"),
  ];
}

function slotStep() {
  const slots = state.slots;
  return [
    heading("book.choose_time"),
    h("p", { class: "chosen" }, localized(state.service.name), h("br"), dayOf(`${state.day}T12:00:00Z`)),
    slots === null
      ? h("p", { class: "loading" }, t("common.loading"))
      : slots.length
        ? h("ul", { class: "slots" }, slots.map((s) =>
            h("li", {}, h("button", { type: "button", class: "slot", "data-slot": s.slot, onclick: () => chooseSlot(s.slot) },
              timeOf(s.slot)))))
        : h("p", { class: "empty", role: "status" }, t("book.no_time")),
    back("day"),
  ];
}

function contactStep() {
  return [
    heading("book.contact_heading"),
    state.remote ? h("p", { class: "chosen" }, localized(state.service.name), h("br"), t("book.join_now")) : summary(state.slot),
    h(
      "form",
      { class: "book-form", onsubmit: sendCode },
      h("div", { class: "field" },
        h("label", { for: "contact" }, t("book.contact")),
        h("input", { id: "contact", name: "contact", required: true, maxlength: 254, autocomplete: "tel", value: state.contact,
          "aria-describedby": "contact-hint" }),
        h("small", { id: "contact-hint", class: "hint" }, t("book.contact_hint"))),
      h("button", { type: "submit", class: "primary", id: "send-code", disabled: state.busy }, t("book.send_code")),
    ),
    back(state.remote ? "day" : "slot"),
  ];
}

function codeStep() {
  const channel = state.pending.channel === "email" ? "book.sent_email" : "book.sent_sms";
  return [
    heading("book.code_heading"),
    h("p", { role: "status" }, t(channel, { minutes: rules.code_minutes })),
    h(
      "form",
      { class: "book-form", onsubmit: confirmCode },
      h("div", { class: "field" },
        h("label", { for: "code" }, t("book.code")),
        h("input", { id: "code", name: "code", required: true, inputmode: "numeric", autocomplete: "one-time-code",
          maxlength: 6, pattern: "[0-9]{6}" })),
      h("button", { type: "submit", class: "primary", id: "confirm-code", disabled: state.busy }, t("book.confirm")),
    ),
  ];
}

function summary(slot) {
  return h("dl", { class: "facts booking-facts" },
    h("dt", {}, t("book.service")), h("dd", { id: "booked-service" }, localized(state.service?.name)),
    h("dt", {}, t("book.day")), h("dd", { id: "booked-day" }, dayOf(slot)),
    h("dt", {}, t("book.time")), h("dd", { id: "booked-time" }, timeOf(slot)));
}

function doneStep() {
  const booking = state.booking;
  const code = booking.short_code;
  const remote = booking.kind === "remote";
  const until = booking.activate_by ?? plusMinutes(booking.slot, rules.remote_minutes);
  return [
    heading(remote ? "book.joined_heading" : "book.done_heading"),
    h("section", { class: "ticket-card booking-card", "aria-labelledby": "step-heading" },
      remote
        ? h("p", { class: "chosen" }, localized(state.service?.name))
        : summary(booking.slot),
      h("p", { class: "notice", id: "arrive" }, remote
        ? t("book.activate", { until: timeOf(until) })
        : t("book.arrive", {
            from: timeOf(plusMinutes(booking.slot, -rules.early_minutes)),
            to: timeOf(plusMinutes(booking.slot, rules.late_minutes)),
          })),
      code ? h("p", {}, t("book.short_code"), h("br"),
        h("strong", { class: "short-code", id: "short-code" }, `${code.slice(0, 4)}-${code.slice(4)}`)) : null,
      state.qr ? h("figure", { class: "qr" }, h("img", { src: state.qr, width: 200, height: 200, alt: t("book.qr_alt") }),
        h("figcaption", {}, t("book.qr_caption"))) : null,
      h("p", { class: "hint" }, t("book.keep_link"))),
    state.askCancel
      ? h("div", { class: "notice warn", role: "alertdialog", "aria-labelledby": "cancel-question" },
          h("p", { id: "cancel-question" }, t("book.cancel_question")),
          h("p", { class: "actions" },
            h("button", { type: "button", class: "danger", id: "cancel-yes", onclick: cancelBooking }, t("book.cancel_yes")),
            h("button", { type: "button", class: "secondary", onclick: () => { state.askCancel = false; render(); } }, t("book.cancel_no"))))
      : h("p", { class: "actions" },
          remote ? null : h("button", { type: "button", class: "secondary", id: "move", onclick: () => { state.moving = true; go("day"); } }, t("book.move")),
          h("button", { type: "button", class: "secondary", id: "cancel", onclick: () => {
            state.askCancel = true;
            render();
            document.getElementById("cancel-yes")?.focus();
          } }, t("book.cancel"))),
  ];
}

function cancelledStep() {
  return [
    heading("book.cancelled_heading"),
    h("p", { role: "status" }, t("book.cancelled")),
    h("p", {}, h("a", { href: location.pathname, class: "primary-link" }, t("book.again"))),
  ];
}

const STEPS = {
  branches: branchesStep,
  service: serviceStep,
  day: dayStep,
  slot: slotStep,
  contact: contactStep,
  code: codeStep,
  done: doneStep,
  cancelled: cancelledStep,
};

function render() {
  app.className = "book";
  const error = state.error
    ? h("p", { class: "error", role: "alert", tabindex: "-1", id: "book-error" }, errorText(state.error),
        state.error.details?.attempts_left != null ? ` (${t("book.attempts_left", { n: state.error.details.attempts_left })})` : null)
    : null;
  show(
    app,
    h("header", { class: "bar" },
      h("h1", {}, t("book.heading")),
      boot.branch ? h("p", { class: "branch" }, localized(boot.branch.name)) : null),
    languageSwitcher(),
    error,
    STEPS[state.step](),
  );
}

onLanguageChange(render);
const held = boot.branch ? fromAddress() : null;
if (held) {
  state.booking = held;
  state.service = services.get(held.service_id) ?? null;
  state.step = "done";
  render();
  showBooking(held).then(render, () => render());
} else {
  // From the phone page without a hall pass (hallpass.js): straight to "join the queue now".
  const asked = new URLSearchParams(location.search);
  if (boot.branch && asked.get("join") === "1" && services.has(asked.get("service"))) {
    state.service = services.get(asked.get("service"));
    state.remote = true;
    state.step = "contact";
  }
  render();
}
