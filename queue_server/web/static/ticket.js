// A citizen's ticket on their phone: number, status, people ahead, wait; when called, a clear
// "go to counter N" with vibration and a chime where the browser allows them.
import {
  api,
  audioContext,
  boot,
  chime,
  errorText,
  Feed,
  h,
  languageSwitcher,
  localized,
  onLanguageChange,
  show,
  t,
  waitText,
} from "./common.js";
import { NearbyBranches } from "./nearby.js";
import { keepingFocus, PushOffer, SubscribeForm } from "./subscribe.js";

const app = document.getElementById("app");
let ticket = null;
let alerted = null; // the called_at (plus recalls) we already buzzed for
let connection = "connecting";
// Feedback once the visit is finished: a rating of 1–5 and an optional comment, once a visit.
const RATINGS = [1, 2, 3, 4, 5];
const COMMENT_MAX = 500;
const RATED_KEY = `rigi.rated.${boot.ticket_id}`;
const subscribe = new SubscribeForm({
  ticketId: boot.ticket_id,
  channels: boot.notify ?? [],
  remember: true,
  changed: () => render(),
});
const push = new PushOffer({ ticketId: boot.ticket_id, key: boot.push_key, changed: () => render() });
// "I'll be late": moves the ticket back once (the server refuses a second time and says so).
const late = { state: "open", error: null };
const feedback = { rating: null, comment: "", state: rememberedRated() ? "sent" : "open", error: null };

function rememberedRated() {
  try {
    return localStorage.getItem(RATED_KEY) === "1";
  } catch {
    return false; // private mode: the server still refuses a second rating
  }
}

function rememberRated() {
  try {
    localStorage.setItem(RATED_KEY, "1");
  } catch {
    // private mode
  }
}

async function sendFeedback(event) {
  event.preventDefault();
  if (feedback.rating === null || feedback.state === "sending") return;
  feedback.state = "sending";
  feedback.error = null;
  render();
  try {
    const comment = feedback.comment.trim();
    await api("POST", `/api/v1/tickets/${boot.ticket_id}/feedback`, {
      rating: feedback.rating,
      ...(comment ? { comment } : {}),
    });
    feedback.state = "sent";
  } catch (error) {
    feedback.state = error.code === "feedback_already_given" ? "sent" : "open";
    if (feedback.state === "open") feedback.error = errorText(error);
  }
  if (feedback.state === "sent") rememberRated();
  render();
}

function feedbackForm() {
  if (ticket.status !== "done") return null;
  if (feedback.state === "sent") {
    return h("section", { class: "feedback", id: "feedback" },
      h("p", { id: "feedback-thanks", role: "status" }, t("ticket.feedback_thanks")));
  }
  return h(
    "form",
    { class: "feedback", id: "feedback", onsubmit: sendFeedback },
    h(
      "fieldset",
      {},
      h("legend", {}, t("ticket.feedback_heading")),
      h(
        "div",
        { class: "stars" },
        RATINGS.map((n) =>
          h(
            "label",
            { title: t("ticket.feedback_star", { n }) },
            h("input", {
              type: "radio",
              name: "rating",
              value: String(n),
              "aria-label": t("ticket.feedback_star", { n }),
              checked: feedback.rating === n,
              onchange: () => {
                feedback.rating = n;
                render();
                document.querySelector(`input[name="rating"][value="${n}"]`)?.focus();
              },
            }),
            h("span", { "aria-hidden": "true" }, String(n)),
          ),
        ),
      ),
    ),
    h("label", { for: "feedback-comment" }, t("ticket.feedback_comment")),
    h("p", { class: "hint", id: "feedback-hint" }, t("ticket.feedback_no_personal")),
    h("textarea", {
      id: "feedback-comment",
      maxlength: String(COMMENT_MAX),
      "aria-describedby": "feedback-hint",
      oninput: (e) => {
        feedback.comment = e.target.value;
      },
    }, feedback.comment),
    feedback.error ? h("p", { class: "error", role: "alert" }, feedback.error) : null,
    h(
      "button",
      { type: "submit", id: "feedback-send", disabled: feedback.rating === null || feedback.state === "sending" },
      t("ticket.feedback_send"),
    ),
  );
}

async function runningLate() {
  if (late.state === "sending") return;
  late.state = "sending";
  late.error = null;
  render();
  try {
    await api("POST", `/api/v1/tickets/${boot.ticket_id}/late`);
    late.state = "done";
  } catch (error) {
    late.state = "open";
    late.error = errorText(error);
  }
  render();
  document.getElementById(late.state === "done" ? "late-done" : "late")?.focus({ preventScroll: true });
}

function lateButton() {
  if (ticket.status !== "waiting") return null;
  if (late.state === "done") return h("p", { id: "late-done", role: "status", tabindex: "-1" }, t("notify.late_done"));
  return [
    h("button", { type: "button", id: "late", class: "secondary", disabled: late.state === "sending", onclick: runningLate },
      t("notify.late")),
    late.error ? h("p", { class: "error", role: "alert", id: "late-error" }, late.error) : null,
  ];
}

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

function render() {
  keepingFocus(draw);
}

// "Where can I go now?" for the ticket's service (made once the ticket is known)
let nearby = null;
function nearbyOf(shown) {
  nearby ??= new NearbyBranches({ branchId: boot.branch.id, serviceId: shown.service_id, changed: render });
  return nearby;
}

function draw() {
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
    ticket.status === "waiting" ? push.element() : null,
    ticket.status === "waiting" ? subscribe.element() : null,
    ticket.status === "waiting" ? nearbyOf(ticket).element() : null,
    lateButton(),
    feedbackForm(),
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
