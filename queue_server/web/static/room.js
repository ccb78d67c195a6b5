// A Community Centre's conference room (`/room/{branch}`): pick a day, see its free times (the
// public calendar never says who asked), and ask for a time with the institution, the purpose,
// an e-mail for the answer and the declaration. The centre's manager decides; the answer comes
// by e-mail.
import { api, boot, errorText, h, languageSwitcher, loadSession, localized, onLanguageChange, session, show, t } from "./common.js";
import { bookableDays, dayOf, timeOf } from "./calendar.js";

const STEP_MS = 30 * 60_000;
const LONGEST_MS = 8 * 3_600_000;
const app = document.getElementById("app");
const rules = boot.booking;
const path = `/api/v1/branches/${encodeURIComponent(boot.branch.id)}/room`;
const state = { day: null, free: null, start: null, sent: null, error: null, busy: false, requests: null };
// The centre's rooms as configured (null: its one room); the calendar names the one shown.
const rooms = boot.rooms ?? [];
state.room = rooms[0]?.id ?? null;
state.shown = null; // the room of the day's answer: its name and seats
const roomQuery = () => (state.room ? `&room=${encodeURIComponent(state.room)}` : "");

const at = (iso) => timeOf(iso, rules.timezone);

/** Every half hour at which a request may start, over the day's free intervals. */
function starts() {
  const found = [];
  for (const interval of state.free ?? []) {
    const until = Date.parse(interval.ends_at);
    for (let time = Date.parse(interval.starts_at); time + STEP_MS <= until; time += STEP_MS) {
      found.push({ time: new Date(time).toISOString(), until });
    }
  }
  return found;
}

/** The ends a request from `start` may have: on the half hour, inside its free interval. */
function ends(start) {
  const found = [];
  const last = Math.min(start.until, Date.parse(start.time) + LONGEST_MS);
  for (let time = Date.parse(start.time) + STEP_MS; time <= last; time += STEP_MS) {
    found.push(new Date(time).toISOString());
  }
  return found;
}

async function chooseDay(day) {
  state.day = day;
  state.free = null;
  state.sent = null;
  state.error = null;
  render();
  try {
    const answer = await api("GET", `${path}?date=${encodeURIComponent(day)}${roomQuery()}`);
    state.free = answer.free;
    state.shown = answer.room;
    state.start = starts()[0] ?? null;
  } catch (error) {
    state.error = error;
  }
  render();
}

async function send(event) {
  event.preventDefault();
  const form = event.target.elements;
  state.busy = true;
  state.error = null;
  render();
  try {
    state.sent = await api("POST", `${path}/requests`, {
      institution: form.institution.value.trim(),
      purpose: form.purpose.value.trim(),
      starts_at: form.starts.value,
      ends_at: form.ends.value,
      contact: form.contact.value.trim(),
      declaration: form.declaration.checked,
      language: document.documentElement.lang,
      ...(state.room && { room: state.room }),
    });
  } catch (error) {
    state.error = error;
  }
  state.busy = false;
  render();
  document.querySelector("#room-error, #room-sent")?.focus();
}

function field(id, label, input) {
  return h("div", { class: "field" }, h("label", { for: id }, label), input);
}

/** Which room, when the centre lends more than one, and its seats. */
function roomChooser() {
  const seats = state.shown?.capacity ? h("p", { id: "room-seats" }, t("room.seats", { n: state.shown.capacity })) : null;
  if (rooms.length < 2) return seats;
  return [
    field("room-choice", t("room.which"), h("select", { id: "room-choice", onchange: (e) => {
      state.room = e.target.value;
      if (state.day) chooseDay(state.day);
    } }, rooms.map((r) => h("option", { value: r.id, selected: r.id === state.room }, localized(r.name))))),
    seats,
  ];
}

const roomName = (id) => localized(rooms.find((r) => r.id === id)?.name);

function form() {
  const options = starts();
  if (!options.length) return h("p", { class: "empty", role: "status" }, t("room.no_time"));
  const start = options.find((s) => s.time === state.start?.time) ?? options[0];
  return h("form", { class: "book-form", id: "room-form", onsubmit: send },
    h("ul", { class: "free-times", "aria-label": t("room.free") },
      (state.free ?? []).map((f) => h("li", {}, `${at(f.starts_at)}–${at(f.ends_at)}`))),
    field("starts", t("room.starts"), h("select", { id: "starts", name: "starts", onchange: (e) => {
      state.start = options.find((s) => s.time === e.target.value);
      const ending = document.getElementById("ends");
      ending.replaceChildren(...ends(state.start).map((time) => h("option", { value: time }, at(time))));
    } }, options.map((s) => h("option", { value: s.time, selected: s.time === start.time }, at(s.time))))),
    field("ends", t("room.ends"), h("select", { id: "ends", name: "ends" },
      ends(start).map((time) => h("option", { value: time }, at(time))))),
    field("institution", t("room.institution"), h("input", { id: "institution", name: "institution", required: true, maxlength: 200, autocomplete: "organization" })),
    field("purpose", t("room.purpose"), h("textarea", { id: "purpose", name: "purpose", required: true, maxlength: 500, rows: 3 })),
    field("contact", t("room.contact"), h("input", { id: "contact", name: "contact", type: "email", required: true, maxlength: 254, autocomplete: "email" })),
    h("div", { class: "field inline" },
      h("input", { id: "declaration", name: "declaration", type: "checkbox", required: true }),
      h("label", { for: "declaration" }, t("room.declaration"))),
    h("button", { type: "submit", class: "primary", id: "send-request", disabled: state.busy }, t("room.send")),
  );
}

// ---- the centre manager's part: the requests, approved or declined here -------------------------

async function loadRequests() {
  try {
    state.requests = await api("GET", `${path}/requests`);
  } catch {
    state.requests = null; // not this centre's manager: the page is the public one
  }
  render();
}

async function decide(request, action) {
  const reason = action === "decline" ? document.getElementById(`reason-${request.id}`)?.value ?? "" : undefined;
  try {
    await api("POST", `${path}/requests/${encodeURIComponent(request.id)}/${action}`,
      action === "decline" ? { reason } : undefined);
    state.error = null;
  } catch (error) {
    state.error = error;
  }
  await loadRequests();
  if (state.day) chooseDay(state.day);
}

function requestsSection() {
  if (!state.requests) return null;
  return h("section", { class: "room-requests", "aria-labelledby": "requests-heading" },
    h("h2", { id: "requests-heading" }, t("room.requests")),
    state.requests.length
      ? h("ul", { class: "choices" }, state.requests.map((r) => h("li", { class: "room-request", "data-request": r.id },
          h("p", {}, h("strong", {}, `${dayOf(r.starts_at, rules.timezone)}, ${at(r.starts_at)}–${at(r.ends_at)}`),
            rooms.length > 1 ? ` · ${roomName(r.room_id)}` : null, " · ", t(`room.status_${r.status}`)),
          h("p", {}, h("strong", {}, r.institution), h("br"), r.purpose),
          r.status === "pending"
            ? h("div", { class: "actions" },
                h("button", { type: "button", class: "primary", "data-action": "approve", onclick: () => decide(r, "approve") }, t("room.approve")),
                h("label", { for: `reason-${r.id}`, class: "visually-hidden" }, t("room.reason")),
                h("input", { id: `reason-${r.id}`, placeholder: t("room.reason"), maxlength: 300 }),
                h("button", { type: "button", class: "secondary", "data-action": "decline", onclick: () => decide(r, "decline") }, t("room.decline")))
            : null)))
      : h("p", { class: "empty" }, t("room.no_requests")));
}

function render() {
  app.className = "book room";
  const sent = state.sent;
  show(app,
    h("header", { class: "bar" }, h("h1", {}, t("room.heading")), h("p", { class: "branch" }, localized(boot.branch.name))),
    languageSwitcher(),
    requestsSection(),
    h("p", {}, t("room.lead")),
    state.error ? h("p", { class: "error", role: "alert", tabindex: "-1", id: "room-error" }, errorText(state.error)) : null,
    sent
      ? h("p", { class: "notice", role: "status", tabindex: "-1", id: "room-sent" },
          t("room.sent", { day: dayOf(sent.starts_at, rules.timezone), from: at(sent.starts_at), to: at(sent.ends_at) }))
      : [
          roomChooser(),
          h("h2", { id: "days-heading" }, t("book.choose_day")),
          h("ul", { class: "choices days", "aria-labelledby": "days-heading" }, bookableDays(rules).map((day) =>
            h("li", {}, h("button", { type: "button", class: "choice", "data-day": day, "aria-pressed": String(day === state.day),
              onclick: () => chooseDay(day) }, dayOf(`${day}T12:00:00Z`, rules.timezone))))),
          state.day
            ? h("section", { "aria-labelledby": "form-heading" },
                h("h2", { id: "form-heading" }, t("room.form_heading", { day: dayOf(`${state.day}T12:00:00Z`, rules.timezone) })),
                state.free === null ? h("p", { class: "loading" }, t("common.loading")) : form())
            : null,
        ],
  );
}

onLanguageChange(render);
render();
// A signed-in manager of this centre sees its requests above the public calendar.
loadSession().then((status) => {
  if (status === "signed_in" && session.user) loadRequests();
});
