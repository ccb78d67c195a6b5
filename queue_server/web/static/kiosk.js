// The ticket kiosk: language, service (grouped by agency, searchable in any language),
// priority, then the ticket: number, people ahead, wait, a QR code and the printer's state.
import {
  api,
  boot,
  deviceToken,
  Feed,
  h,
  languageSwitcher,
  localized,
  onLanguageChange,
  setLanguage,
  t,
} from "./common.js";

const RESULT_SHOWN_MS = 45_000;
const token = deviceToken();
const app = document.getElementById("app");
const state = { screen: "choose", query: "", priority: false, ticket: null, error: null };
let ticketFeed = null;
let resetTimer = null;

function fold(text) {
  return (text || "").toLocaleLowerCase().normalize("NFKD").replace(/\p{M}/gu, "");
}

function matches(service, agency, query) {
  if (!query) return true;
  const haystack = [
    service.letter,
    ...Object.values(service.name),
    ...Object.values(agency?.name ?? {}),
  ]
    .filter(Boolean)
    .map(fold);
  return haystack.some((text) => text.includes(query));
}

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
        headers: { "Idempotency-Key": `kiosk-${key}`, ...(client && { "X-Rigi-Client": client }) },
      },
    );
    showTicket(ticket);
  } catch (error) {
    state.error = error.status === 0 ? t("common.offline") : t("kiosk.error");
    render();
  }
}

function showTicket(ticket) {
  state.screen = "ticket";
  state.ticket = ticket;
  render();
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
  clearTimeout(resetTimer);
  resetTimer = setTimeout(reset, RESULT_SHOWN_MS);
}

function reset() {
  ticketFeed?.stop();
  ticketFeed = null;
  clearTimeout(resetTimer);
  Object.assign(state, { screen: "choose", query: "", priority: false, ticket: null, error: null });
  if (document.documentElement.lang !== "ka") setLanguage("ka");
  else render();
}

function chooseScreen() {
  const query = fold(state.query.trim());
  const agencies = new Map(boot.agencies.map((agency) => [agency.id, agency]));
  const groups = [];
  for (const agency of boot.agencies) {
    const services = boot.services.filter(
      (service) => service.agency === agency.id && matches(service, agencies.get(agency.id), query),
    );
    if (services.length === 0) continue;
    groups.push(
      h(
        "section",
        { class: "agency", "aria-labelledby": `agency-${agency.id}` },
        h("h2", { id: `agency-${agency.id}` }, localized(agency.name)),
        h(
          "div",
          { class: "services" },
          services.map((service) =>
            h(
              "button",
              {
                type: "button",
                class: "service",
                "data-service": service.id,
                onclick: () => take(service),
              },
              h("span", { class: "letter", "aria-hidden": "true" }, service.letter),
              h("span", { class: "name" }, localized(service.name)),
            ),
          ),
        ),
      ),
    );
  }
  const search = h("input", {
    id: "search",
    type: "search",
    autocomplete: "off",
    value: state.query,
    placeholder: t("kiosk.search_placeholder"),
    oninput: (event) => {
      state.query = event.target.value;
      render();
      const again = document.getElementById("search");
      again.focus();
      again.setSelectionRange(again.value.length, again.value.length);
    },
  });
  return [
    h(
      "header",
      { class: "bar" },
      h("h1", {}, t("kiosk.heading")),
      h("p", { class: "branch" }, localized(boot.branch.name)),
    ),
    languageSwitcher(),
    h(
      "div",
      { class: "kiosk-tools" },
      h(
        "div",
        { class: "field search-field" },
        h("label", { for: "search" }, t("kiosk.search")),
        search,
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
    ),
    state.error ? h("p", { class: "error", role: "alert" }, state.error) : null,
    h("p", { class: "lead" }, t("kiosk.choose_service")),
    groups.length ? groups : h("p", { class: "empty", role: "status" }, t("kiosk.no_match")),
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
                ticket.wait_minutes === null || ticket.wait_minutes === undefined
                  ? "–"
                  : t("common.minutes", { n: ticket.wait_minutes }),
              ),
            ]
          : [h("dt", {}, t("common.status")), h("dd", {}, t(`status.${ticket.status}`))],
      ),
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
    h("button", { type: "button", class: "primary", id: "done", onclick: reset }, t("kiosk.done")),
  ];
}

function render() {
  app.replaceChildren(...[state.screen === "ticket" ? ticketScreen() : chooseScreen()].flat(Infinity).filter(Boolean));
  app.className = `kiosk screen-${state.screen}`;
  if (state.screen === "ticket") document.getElementById("done").focus({ preventScroll: true });
}

onLanguageChange(render);
render();
