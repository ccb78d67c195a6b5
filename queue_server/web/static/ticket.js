// A citizen's ticket on their phone: number, status, people ahead, wait; when called, a clear
// "go to counter N" with vibration and a chime where the browser allows them.
import {
  api,
  audioContext,
  boot,
  chime,
  Feed,
  h,
  languageSwitcher,
  localized,
  onLanguageChange,
  show,
  t,
} from "./common.js";

const app = document.getElementById("app");
let ticket = null;
let alerted = null; // the called_at (plus recalls) we already buzzed for
let connection = "connecting";

function facts() {
  if (ticket.status !== "waiting") return null;
  return h(
    "dl",
    { class: "facts" },
    h("dt", {}, t("common.people_ahead")),
    h("dd", { id: "people-ahead" }, ticket.people_ahead ?? "–"),
    h("dt", {}, t("common.estimated_wait")),
    h(
      "dd",
      { id: "wait" },
      waitText(ticket),
    ),
  );
}

// "about 10–25 min" and "9 in 10 are called within 25 min" when a forecast is known; says so
// when no open counter serves the service now.
function waitText(ticket) {
  if (ticket.served_now === false) {
    if (!ticket.next_open_at) return t("common.not_served_now");
    const opens = new Date(ticket.next_open_at);
    const time = opens.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    return t("common.not_served_until", { time });
  }
  const range = ticket.wait_range;
  if (range) {
    return [
      t("common.wait_range", { low: range.median_min, high: range.p90_min }),
      h("br"),
      h("small", { id: "wait-p90" }, t("common.wait_p90", { n: range.p90_min })),
    ];
  }
  return ticket.wait_minutes == null ? "–" : t("common.minutes", { n: ticket.wait_minutes });
}

function render() {
  if (!ticket) return;
  const called = ticket.status === "called" && ticket.counter_number;
  app.className = `ticket-page status-${ticket.status}`;
  const context = audioContext();
  show(app, 
    h("header", { class: "bar" }, h("h1", {}, t("ticket.heading")), h("p", { class: "branch" }, localized(boot.branch.name))),
    languageSwitcher(),
    h(
      "div",
      { class: "ticket-card" },
      h("p", { class: "ticket-number", id: "ticket-number", "aria-label": t("common.ticket_number") }, ticket.label),
      h("p", { class: "service-name" }, ticket.service_name),
      called
        ? h(
            "p",
            { class: "go", id: "go", role: "alert" },
            h("span", { "aria-hidden": "true" }, "➜ "),
            t("ticket.go_to_counter", { n: ticket.counter_number }),
          )
        : h("p", { class: `status`, id: "status", role: "status" }, t(`status.${ticket.status}`)),
      facts(),
      ticket.status === "waiting" ? h("p", { class: "hint" }, t("ticket.keep_open")) : null,
    ),
    context && context.state !== "running"
      ? h(
          "button",
          {
            type: "button",
            class: "secondary",
            onclick: async () => {
              await context.resume();
              render();
            },
          },
          t("ticket.enable_sound"),
        )
      : null,
    h("p", { class: `connection ${connection}`, role: "status" }, t(`display.${connection}`)),
  );
}

function update(next) {
  ticket = next;
  const calledKey = ticket.status === "called" ? `${ticket.called_at}#${ticket.recalls}` : null;
  if (calledKey && calledKey !== alerted) {
    alerted = calledKey;
    navigator.vibrate?.([400, 150, 400, 150, 400]);
    chime();
  }
  render();
}

onLanguageChange(render);
new Feed(`/ws/tickets/${boot.ticket_id}`, {
  onMessage(message) {
    if (message.type === "ticket") update(message.ticket);
  },
  onState(next) {
    connection = next === "live" ? "live" : next === "connecting" ? "connecting" : "offline";
    render();
  },
}).start();
api("GET", `/api/v1/tickets/${boot.ticket_id}`).then((first) => {
  if (!ticket) update(first);
}, () => null);
