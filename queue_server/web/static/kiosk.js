// The ticket kiosk: language, service (the branch's most used first, or found by a search that
// reads any alphabet, typos and synonyms), priority, then the ticket: number, people ahead, wait,
// a QR code and the printer's state. Without its device token it says it is not set up.
import {
  api,
  boot,
  deviceToken,
  Feed,
  h,
  languageSwitcher,
  localized,
  onLanguageChange,
  refreshBoot,
  setLanguage,
  t,
  waitText,
} from "./common.js";

import { checkInForm } from "./checkin.js";
import { HallPassCode, joinAddress, joinNotice, passRefused, phonePass } from "./hallpass.js";
import { Keyboard } from "./keyboard.js";
import { NearbyBranches } from "./nearby.js";
import { rankServices, searchIndex } from "./search.js";
import { keepingFocus, SubscribeForm } from "./subscribe.js";

const RESULT_SHOWN_MS = 45_000;
const MOST_USED = 18;
// The phone page (/take/{branch}) is this page without a device token, by design; the kiosk
// itself without its token says it is not set up.
const phone = Boolean(boot.phone);
const token = phone ? null : deviceToken();
const app = document.getElementById("app");
const state = {
  screen: token || phone ? "choose" : "needs_setup",
  query: "",
  priority: false,
  all: false,
  keyboard: false,
  ticket: null,
  error: null,
};
let ticketFeed = null;
let subscribe = null; // the ticket's "tell me when near" form, forgotten with the ticket
let nearby = null; // "where can I go now?" for the ticket's service, forgotten with it
// Services no open counter serves now: their tiles say so (never "0 min"), from the branch's
// `served_now`, read again every minute.
let notServed = new Set();
const SERVED_REFRESH_MS = 60_000;
let resetTimer = null;
let agencies, index, byUse;
const usage = (service) => (boot.usage?.[service.id] ?? 0) * 1000 + (service.popularity ?? 0);

/** Index the branch's services (at start, and again when the organisation changes). */
function indexServices() {
  agencies = new Map(boot.agencies.map((agency) => [agency.id, agency]));
  index = boot.services.map((service) => searchIndex(service, agencies.get(service.agency)?.name));
  byUse = [...boot.services].sort((a, b) => usage(b) - usage(a));
}
indexServices();

function newKey() {
  if (crypto.randomUUID && window.isSecureContext) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// A phone (no device token) keeps one random client id: its Idempotency-Keys are scoped by it.
function clientId() {
  try {
    let id = localStorage.getItem("rigi.client-id");
    if (!id) localStorage.setItem("rigi.client-id", (id = newKey().replaceAll("-", "")));
    return id;
  } catch {
    return null; // private mode: the server scopes by address
  }
}

async function take(service) {
  state.error = null;
  if (phone && phonePass.state !== "valid") {
    location.assign(joinAddress(service.id)); // not in the hall: a place that counts on arrival
    return;
  }
  const key = newKey();
  const client = token ? null : clientId();
  try {
    const ticket = await api(
      "POST",
      `/api/v1/branches/${encodeURIComponent(boot.branch.id)}/tickets`,
      {
        service_id: service.id,
        priority: token && state.priority ? "priority" : "normal",
        language: document.documentElement.lang,
      },
      {
        token,
        headers: {
          "Idempotency-Key": `kiosk-${key}`,
          ...(client && { "X-Rigi-Client": client }),
          ...(phone && { "X-Rigi-Hall-Pass": phonePass.token }),
        },
      },
    );
    showTicket(ticket);
  } catch (error) {
    if (phone && passRefused(error)) {
      // the pass rotated out while the citizen chose: say so, and offer to join instead
      Object.assign(phonePass, { state: error.code, token: null });
      render();
      return;
    }
    if (error.status === 401 || error.status === 403) state.screen = "needs_setup";
    state.error = error.status === 0 ? t("common.offline") : t("kiosk.error");
    render();
  }
}

function showTicket(ticket) {
  state.screen = "ticket";
  state.ticket = ticket;
  subscribe = new SubscribeForm({
    ticketId: ticket.id,
    channels: boot.notify ?? [],
    token,
    keypad: !phone,
    remember: phone,
    changed: () => {
      render();
      keepShowing(); // a citizen typing a number is not left mid-way by the reset
    },
  });
  nearby = new NearbyBranches({
    branchId: boot.branch.id,
    serviceId: ticket.service_id,
    changed: () => {
      render();
      keepShowing();
    },
  });
  render();
  document.getElementById("done").focus({ preventScroll: true });
  ticketFeed?.stop();
  ticketFeed = new Feed(`/ws/tickets/${ticket.id}`, {
    token,
    onMessage(message) {
      if (message.type === "ticket" && state.screen === "ticket") {
        state.ticket = { ...state.ticket, ...message.ticket };
        render();
      }
    },
  }).start();
  keepShowing();
}

function keepShowing() {
  clearTimeout(resetTimer);
  resetTimer = setTimeout(reset, RESULT_SHOWN_MS);
}

function reset() {
  ticketFeed?.stop();
  ticketFeed = null;
  subscribe = null;
  nearby = null;
  clearTimeout(resetTimer);
  Object.assign(state, {
    screen: "choose", query: "", priority: false, all: false, keyboard: false, ticket: null, error: null,
  });
  if (document.documentElement.lang !== "ka") setLanguage("ka");
  else render();
}

function serviceButton(service, first = false) {
  return h(
    "button",
    {
      type: "button",
      class: first ? "service best" : "service",
      "data-service": service.id,
      onclick: () => take(service),
    },
    h("span", { class: "letter", "aria-hidden": "true" }, service.letter),
    h(
      "span",
      { class: "name" },
      localized(service.name),
      notServed.has(service.id)
        ? [h("br"), h("span", { class: "not-served" }, t("common.not_served_now"))]
        : null,
    ),
  );
}

function setQuery(query) {
  state.query = query;
  render();
  const again = document.getElementById("search");
  if (!again) return;
  again.focus({ preventScroll: true });
  again.setSelectionRange(again.value.length, again.value.length);
}

const keyboard = new Keyboard({
  type: (text) => setQuery(state.query + text),
  erase: () => setQuery(state.query.slice(0, -1)),
  clear: () => setQuery(""),
});

function serviceList() {
  if (state.query.trim()) {
    const found = rankServices(index, state.query, usage);
    return found.length
      ? h("section", { "aria-labelledby": "results-heading" },
          h("h2", { id: "results-heading", role: "status" }, t("kiosk.found", { n: found.length })),
          h("div", { class: "services", id: "results" }, found.map((s, i) => serviceButton(s, i === 0))))
      : h("p", { class: "empty", role: "status" }, t("kiosk.no_match"));
  }
  const language = document.documentElement.lang;
  const everything = [...boot.services].sort((a, b) =>
    localized(a.name).localeCompare(localized(b.name), language),
  );
  return [
    h("section", { "aria-labelledby": "most-used-heading" },
      h("h2", { id: "most-used-heading" }, t("kiosk.most_used")),
      h("div", { class: "services", id: "most-used" }, byUse.slice(0, MOST_USED).map((s) => serviceButton(s)))),
    h("button", {
      type: "button", id: "all-services", class: "toggle-all", "aria-expanded": String(state.all),
      onclick: () => { state.all = !state.all; render(); },
    }, t(state.all ? "kiosk.fewer_services" : "kiosk.all_services", { n: boot.services.length })),
    state.all
      ? h("section", { "aria-labelledby": "all-heading" },
          h("h2", { id: "all-heading" }, t("kiosk.all_heading")),
          h("div", { class: "services compact", id: "all" }, everything.map((s) => serviceButton(s))))
      : null,
  ];
}

function chooseScreen() {
  const search = h("input", {
    id: "search",
    type: "search",
    autocomplete: "off",
    spellcheck: "false",
    value: state.query,
    placeholder: t("kiosk.search_placeholder"),
    oninput: (event) => setQuery(event.target.value),
  });
  return [
    h(
      "header",
      { class: "bar" },
      h("h1", {}, t("kiosk.heading")),
      h("p", { class: "branch" }, localized(boot.branch.name)),
    ),
    languageSwitcher(),
    phone ? joinNotice() : null,
    h(
      "div",
      { class: "kiosk-tools" },
      h(
        "div",
        { class: "field search-field" },
        h("label", { for: "search" }, t("kiosk.search")),
        h("div", { class: "search-row" },
          search,
          h("button", {
            type: "button", id: "keyboard-toggle", class: "keyboard-toggle", "aria-pressed": String(state.keyboard),
            "aria-controls": state.keyboard ? "keyboard" : null,
            onclick: () => { state.keyboard = !state.keyboard; render(); },
          }, h("span", { "aria-hidden": "true" }, "⌨ "), t("kiosk.keyboard"))),
      ),
      // Priority is granted at a kiosk (or by staff), never claimed from a phone (no token).
      Boolean(token) &&
      h(
        "button",
        {
          type: "button",
          id: "priority",
          class: "toggle",
          "aria-pressed": String(state.priority),
          onclick: () => {
            state.priority = !state.priority;
            render();
            document.getElementById("priority").focus();
          },
        },
        h("span", { class: "check", "aria-hidden": "true" }, state.priority ? "✓" : ""),
        h(
          "span",
          {},
          h("strong", {}, t("kiosk.priority")),
          h("br"),
          h("small", {}, t("kiosk.priority_hint")),
        ),
      ),
      hallPass?.element,
    ),
    state.keyboard ? keyboard.element(document.documentElement.lang) : null,
    state.error ? h("p", { class: "error", role: "alert" }, state.error) : null,
    // A booking or a remote place is checked in at the kiosk only, never from a phone.
    token
      ? checkInForm(boot.branch.id, token, showTicket, (text) => {
          state.error = text;
          render();
        })
      : null,
    serviceList(),
  ];
}

/** Shown instead of tickets when the kiosk has no device token: it must not issue anonymously. */
function setupScreen() {
  return [
    h("header", { class: "bar" }, h("h1", {}, t("kiosk.not_set_up")),
      h("p", { class: "branch" }, localized(boot.branch.name))),
    languageSwitcher(),
    h("div", { class: "notice warn", id: "not-set-up", role: "alert" },
      h("p", {}, t("kiosk.not_set_up_citizen"))),
    h("p", {}, t("kiosk.not_set_up_staff")),
  ];
}

function printMessage(print) {
  if (!print) return null;
  const problem = print.status === "failed" || print.status === "no_printer";
  const text = {
    queued: t("kiosk.print_queued"),
    printed: t("kiosk.print_done"),
    failed: t("kiosk.print_failed"),
    no_printer: t("kiosk.print_failed"),
  }[print.status];
  if (!text) return null;
  return h(
    "p",
    { class: problem ? "notice warn" : "notice", role: problem ? "alert" : "status" },
    problem ? h("span", { "aria-hidden": "true" }, "⚠ ") : null,
    text,
  );
}

/** What to have ready for the service, and where it can be done online, when configured. */
function serviceNotes(serviceId) {
  const service = boot.services.find((s) => s.id === serviceId);
  if (!service?.documents?.length && !service?.online_url) return null;
  return h("div", { class: "service-notes", id: "service-notes" },
    service.documents?.length
      ? [h("p", { class: "notes-title" }, t("kiosk.bring")),
         h("ul", { id: "documents" }, service.documents.map((d) => h("li", {}, localized(d))))]
      : null,
    service.online_url ? h("p", { id: "online" }, t("kiosk.online"), " ", h("span", { class: "url" }, service.online_url)) : null);
}

function ticketScreen() {
  const ticket = state.ticket;
  const waiting = ticket.status === "waiting";
  const called = ticket.status === "called" && ticket.counter_number;
  return [
    h(
      "header",
      { class: "bar" },
      h("h1", {}, t("kiosk.your_ticket")),
      h("p", { class: "branch" }, localized(boot.branch.name)),
    ),
    h(
      "div",
      { class: "ticket-card" },
      h(
        "p",
        { class: "ticket-number", id: "ticket-number", "aria-label": t("common.ticket_number") },
        ticket.label,
      ),
      h("p", { class: "service-name" }, ticket.service_name),
      ticket.priority === "priority" ? h("p", { class: "tag" }, t("kiosk.priority")) : null,
      ticket.priority_requested
        ? h("p", { class: "tag", id: "priority-requested", role: "status" }, t("kiosk.priority_requested"))
        : null,
      called
        ? h("p", { class: "go", role: "alert" }, t("ticket.go_to_counter", { n: ticket.counter_number }))
        : null,
      h(
        "dl",
        { class: "facts" },
        waiting
          ? [
              h("dt", {}, t("common.people_ahead")),
              h("dd", { id: "people-ahead" }, ticket.people_ahead ?? "–"),
              h("dt", {}, t("common.estimated_wait")),
              h(
                "dd",
                { id: "wait" },
                waitText(ticket),
              ),
            ]
          : [h("dt", {}, t("common.status")), h("dd", {}, t(`status.${ticket.status}`))],
      ),
      serviceNotes(ticket.service_id),
      printMessage(ticket.print),
      h(
        "figure",
        { class: "qr" },
        h("img", {
          src: `/qr/${ticket.id}.svg`,
          width: 180,
          height: 180,
          alt: t("kiosk.qr_alt"),
        }),
        h("figcaption", {}, t("kiosk.qr_caption")),
      ),
    ),
    ticket.status === "waiting" ? subscribe?.element() : null,
    ticket.status === "waiting" ? nearby?.element() : null,
    h("button", { type: "button", class: "primary", id: "done", onclick: reset }, t("kiosk.done")),
  ];
}

function render() {
  const screens = { ticket: ticketScreen, needs_setup: setupScreen, choose: chooseScreen };
  keepingFocus(() => {
    app.replaceChildren(...[screens[state.screen]()].flat(Infinity).filter(Boolean));
    app.className = `kiosk screen-${state.screen}`;
  });
}

/** Whether the server knows the kiosk's token. A token that matches no live device counts as
 *  nobody (401), where a known kiosk is only refused a staff route (403); the server would
 *  otherwise issue its tickets as an anonymous phone's. */
async function checkToken() {
  if (!token) return;
  try {
    await api("GET", "/api/v1/session", undefined, { token });
  } catch (error) {
    if (error.status === 401) {
      state.screen = "needs_setup";
      render();
    }
  }
}

/** Redraw for news from the server (a snapshot, the services served now), not for a touch: a
 *  citizen typing in the search box keeps its focus, text and selection, so what they type next
 *  lands where it would have (without, it lost the focus or had its selection moved to the end,
 *  and a replacing keystroke was added to the old text instead). */
function redraw() {
  const box = document.getElementById("search");
  const typing = box !== null && document.activeElement === box;
  const start = typing ? box.selectionStart : null;
  const end = typing ? box.selectionEnd : null;
  render();
  if (!typing) return;
  const again = document.getElementById("search");
  if (!again) return;
  again.focus({ preventScroll: true });
  if (start !== null && end !== null) again.setSelectionRange(start, end);
}

async function refreshServed({ follow = false } = {}) {
  try {
    const branch = await api("GET", `/api/v1/branches/${encodeURIComponent(boot.branch.id)}`);
    // A phone follows no feed: it notices an organisation change by the services offered.
    const known = new Set(boot.services.map((s) => s.id));
    const offered = branch.services.map((s) => s.id);
    if (follow && (offered.length !== known.size || offered.some((id) => !known.has(id)))) {
      await refreshServices();
      return;
    }
    const next = new Set(branch.services.filter((s) => s.served_now === false).map((s) => s.id));
    const changed = next.size !== notServed.size || [...next].some((id) => !notServed.has(id));
    notServed = next;
    if (changed && state.screen === "choose") redraw();
  } catch {
    // offline: keep what we knew
  }
}

/** A manager changed what the branch offers: take the new services and redraw, no reload. */
async function refreshServices() {
  try {
    await refreshBoot();
    indexServices();
    await refreshServed();
    if (state.screen === "choose") redraw();
  } catch {
    // offline: the feed reconnects and says so again
  }
}

// A set-up kiosk shows the hall pass: a phone that scans it takes a ticket there instead.
const hallPass = token ? new HallPassCode({ token, className: "hall-pass kiosk-pass" }).start() : null;
onLanguageChange(() => hallPass?.relabel());

// A set-up kiosk follows its branch's board feed only to hear of organisation changes. Each
// (re)connect starts with a snapshot: a change made while the feed was not yet (or no longer)
// connected was never told, so the kiosk reads its services again then.
if (token) {
  new Feed(`/ws/branches/${encodeURIComponent(boot.branch.id)}/board`, {
    token,
    onMessage: (message) => {
      if (message.type === "snapshot") refreshServices();
      else if (message.type === "event" && message.kind === "organisation.changed") refreshServices();
    },
  }).start();
}

onLanguageChange(render);
render();
checkToken();
refreshServed();
setInterval(() => refreshServed({ follow: phone }), SERVED_REFRESH_MS);
