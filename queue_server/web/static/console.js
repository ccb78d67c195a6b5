// The operator console: sign in, choose a counter, and work the queue with buttons or keys.
// The counter feed keeps the current visit and the waiting list current.
import {
  api,
  boot,
  clockText,
  errorText,
  Feed,
  h,
  languageSwitcher,
  loadSession,
  localized,
  onLanguageChange,
  refreshBoot,
  session,
  signInForm,
  signOut,
  t,
} from "./common.js";

const COUNTER_KEY = "rigi.console-counter";
const app = document.getElementById("app");
const services = new Map(boot.services.map((s) => [s.id, s]));
const state = {
  auth: "checking", // checking | signed_in | signed_out | not_required
  counterId: null,
  counter: null,
  current: null,
  waiting: [],
  receivedAt: Date.now(),
  message: null,
  error: null,
  busy: false,
  next: null, // a shortcut pressed while a request was in flight: done right after it
  outcome: "served",
  connection: "connecting",
};
let feed = null;

const ACTIONS = [
  { id: "call-next", key: "n", label: "console.call_next", primary: true },
  { id: "recall", key: "r", label: "console.recall" },
  { id: "start", key: "s", label: "console.start" },
  { id: "finish", key: "f", label: "console.finish" },
  { id: "no-show", key: "m", label: "console.no_show" },
  { id: "recycle", key: "b", label: "console.recycle" },
  { id: "transfer", key: "t", label: "console.transfer" },
  { id: "call", key: "k", label: "console.call_ticket" },
  { id: "open", key: "o", label: "console.open" },
  { id: "pause", key: "p", label: "console.pause" },
  { id: "close", key: "x", label: "console.close" },
];

function counterPath(action) {
  return `/api/v1/branches/${encodeURIComponent(boot.branch.id)}/counters/${encodeURIComponent(state.counterId)}/${action}`;
}

function field(id) {
  return document.getElementById(id);
}

async function act(action) {
  let body;
  if (action === "finish") body = { outcome: state.outcome };
  if (action === "pause") {
    const reason = field("pause-reason").value.trim();
    if (!reason) {
      state.error = t("console.pause_needs_reason");
      render();
      field("pause-reason").focus();
      return;
    }
    body = { reason };
  }
  if (action === "transfer") {
    const target = field("transfer-target").value;
    if (!target) {
      state.error = t("console.transfer_needs_target");
      render();
      field("transfer-target").focus();
      return;
    }
    const [kind, id] = target.split(":");
    body = kind === "service" ? { service_id: id } : { counter_id: id };
  }
  if (action === "call") {
    const wanted = field("call-label").value.trim().toUpperCase();
    const ticket = state.waiting.find((w) => w.label.toUpperCase() === wanted || w.id === wanted);
    if (!ticket) {
      state.error = t("console.no_such_waiting", { label: wanted || "–" });
      render();
      field("call-label").focus();
      return;
    }
    body = { ticket_id: ticket.id };
  }
  await send(action, body);
}

async function send(action, body) {
  state.busy = true;
  state.error = null;
  try {
    const result = await api("POST", counterPath(action), body);
    applyResult(action, result);
    state.message = result?.label
      ? t("console.done_ticket", { action: t(`console.did.${action}`), label: result.label })
      : t(`console.did.${action}`);
    if (action === "pause") field("pause-reason").value = "";
    if (action === "call") field("call-label").value = "";
  } catch (error) {
    if (error.status === 401 || error.status === 403) {
      state.auth = session.available ? "signed_out" : state.auth;
    }
    state.error = errorText(error);
  } finally {
    state.busy = false;
    render();
  }
  // A clerk who presses F then N at once means both: the second key is not dropped.
  const next = state.next;
  state.next = null;
  if (next && !state.error) act(next);
}

/** Staff who have seen the citizen grant their waiting ticket priority (audited); the counter
 *  feed then re-ranks the waiting list. */
async function grantPriority(ticket) {
  state.busy = true;
  state.error = null;
  try {
    const branch = encodeURIComponent(boot.branch.id);
    const result = await api("POST", `/api/v1/branches/${branch}/tickets/${encodeURIComponent(ticket.id)}/priority`);
    ticket.priority = result.priority;
    state.message = t("console.done_ticket", { action: t("console.did.priority"), label: result.label });
  } catch (error) {
    state.error = errorText(error);
  } finally {
    state.busy = false;
    render();
  }
}

const IN_HAND = new Set(["called", "serving"]);

/** Take the answer of an action as the new state at once (the counter feed confirms it a moment
 *  later), so the buttons valid next are enabled without waiting for the feed. */
// A visit only moves forward (called, then serving, then ended). A feed frame read before this
// console's own action committed can still arrive after that action's answer (on a busy server,
// or over Redis): it must not put the visit back a step, nor bring back one this console ended.
const STEP = { called: 1, serving: 2 };
const ENDED = new Set(["done", "no_show", "cancelled"]);
const endedHere = new Set();

function olderThanShown(frameCurrent) {
  if (!frameCurrent) return false;
  if (endedHere.has(frameCurrent.id)) return true;
  const shown = state.current;
  return Boolean(shown && shown.id === frameCurrent.id && STEP[frameCurrent.status] < STEP[shown.status]);
}

function applyResult(action, result) {
  if (!result) return;
  if (["open", "pause", "close"].includes(action)) {
    if (result.state && state.counter) {
      state.counter = { ...state.counter, state: result.state, pause_reason: result.pause_reason };
    }
  } else if (result.status) {
    if (ENDED.has(result.status)) endedHere.add(result.id);
    state.current = IN_HAND.has(result.status) ? { ...(state.current ?? {}), ...result } : null;
    if (result.status === "called") state.waiting = state.waiting.filter((w) => w.id !== result.id);
  }
}

function chooseCounter(counterId) {
  state.counterId = counterId;
  state.counter = null;
  state.current = null;
  state.waiting = [];
  try {
    localStorage.setItem(`${COUNTER_KEY}.${boot.branch.id}`, counterId);
  } catch {
    /* not remembered */
  }
  feed?.stop();
  feed = new Feed(
    `/ws/branches/${encodeURIComponent(boot.branch.id)}/counters/${encodeURIComponent(counterId)}`,
    {
      onMessage(message) {
        // A manager changed the organisation: the counters and services again, no reload.
        if (message.type === "organisation") refreshBoot().then(render, () => {});
        if (message.type !== "counter") return;
        noticeTakeOver(state.counter?.operator, message.counter?.operator);
        state.counter = message.counter;
        if (!olderThanShown(message.current)) state.current = message.current;
        state.waiting = message.waiting;
        state.receivedAt = Date.now();
        render();
      },
      onState(next) {
        state.connection = next === "live" ? "live" : next === "connecting" ? "connecting" : "offline";
        const status = field("connection");
        if (status) status.textContent = t(`display.${state.connection}`);
      },
    },
  ).start();
  render();
}

/** Someone else (a manager) took over the counter this operator held: say who. */
function noticeTakeOver(before, after) {
  const me = session.user ? `${session.user.role}:${session.user.username}` : null;
  if (!me || before !== me || !after || after === me) return;
  state.error = t("console.taken_over", { name: after.slice(after.indexOf(":") + 1) });
}

function counterChooser() {
  return h(
    "div",
    { class: "field counter-choice" },
    h("label", { for: "counter" }, t("console.counter")),
    h(
      "select",
      { id: "counter", onchange: (event) => chooseCounter(event.target.value) },
      h("option", { value: "" }, t("console.choose_counter")),
      boot.counters.map((c) =>
        h("option", { value: c.id, selected: c.id === state.counterId }, t("console.counter_n", { n: c.number })),
      ),
    ),
  );
}

/** The actions valid now, from the counter's state and the visit in hand (the ticket life cycle:
 *  called → recall, start, no-show, back to queue; serving → finish, transfer). */
function validActions() {
  const valid = new Set();
  const counter = state.counter;
  if (!counter) return valid;
  const visit = state.current;
  const open = counter.state === "open";
  if (!open) valid.add("open");
  if (open) valid.add("pause");
  if (counter.state !== "closed" && !visit) valid.add("close");
  if (open && !visit) {
    valid.add("call-next");
    if (state.waiting.length) valid.add("call");
  }
  if (visit?.status === "called") ["recall", "start", "no-show", "recycle"].forEach((a) => valid.add(a));
  if (visit?.status === "serving") ["finish", "transfer"].forEach((a) => valid.add(a));
  return valid;
}

function actionButton(action) {
  return h(
    "button",
    {
      type: "button",
      class: action.primary ? "primary action" : "action",
      id: `action-${action.id}`,
      "aria-keyshortcuts": action.key.toUpperCase(),
      disabled: state.busy || !state.counterId || !validActions().has(action.id),
      onclick: () => act(action.id),
    },
    t(action.label),
    " ",
    h("kbd", { "aria-hidden": "true" }, action.key.toUpperCase()),
  );
}

function currentVisit() {
  const visit = state.current;
  if (!visit) return h("section", { class: "current", "aria-labelledby": "current-heading" },
    h("h2", { id: "current-heading" }, t("console.current")), h("p", { class: "empty" }, t("console.no_visit")));
  return h(
    "section",
    { class: "current", "aria-labelledby": "current-heading" },
    h("h2", { id: "current-heading" }, t("console.current")),
    h("div", { class: "visit" },
      h("p", { class: "ticket-number", id: "current-label" }, visit.label),
      h("div", {},
        h("p", { class: "service-name" }, visit.service_name),
        h("p", {}, t(`status.${visit.status}`), visit.recalls ? ` · ${t("console.recalls", { n: visit.recalls })}` : ""),
        h("p", { class: "timer" }, t("console.since_called"), " ",
          h("span", { id: "visit-timer", "data-since": visit.called_at ?? "" }, timerText(visit.called_at))))),
  );
}

function timerText(since) {
  return since ? clockText((Date.now() - Date.parse(since)) / 1000) : "–";
}

function waitingList() {
  const elapsed = (Date.now() - state.receivedAt) / 1000;
  const rows = state.waiting.map((ticket) => {
    const service = services.get(ticket.service_id);
    const waited = Math.floor(((ticket.waited_s ?? 0) + elapsed) / 60);
    const target = service?.target_wait_min ?? 0;
    const level = target && waited > target ? "over" : target && waited >= target * 0.8 ? "near" : "ok";
    return h(
      "tr",
      { "data-ticket": ticket.label },
      h("th", { scope: "row" }, ticket.label),
      h("td", {}, localized(service?.name) || ticket.service_name),
      h("td", {}, ticket.priority === "normal" ? "" : t(`priority.${ticket.priority}`)),
      h("td", { class: `level ${level}` },
        h("span", { "aria-hidden": "true" }, { ok: "✓ ", near: "◐ ", over: "⚠ " }[level]),
        t("console.wait_of_target", { waited, target: Math.round(target) }),
        " ", h("span", { class: "visually-hidden" }, t(`level.${level}`))),
      h("td", {}, h("button", {
        type: "button", class: "small",
        disabled: state.busy || !validActions().has("call"),
        "aria-label": t("console.call_this", { label: ticket.label }),
        onclick: () => send("call", { ticket_id: ticket.id }),
      }, t("console.call")),
      ticket.priority === "normal"
        ? h("button", {
          type: "button", class: "small", "data-grant": ticket.label,
          disabled: state.busy,
          "aria-label": t("console.grant_this", { label: ticket.label }),
          onclick: () => grantPriority(ticket),
        }, t("console.grant"))
        : null),
    );
  });
  return h(
    "section",
    { class: "waiting", "aria-labelledby": "waiting-heading" },
    h("h2", { id: "waiting-heading" }, t("console.waiting", { n: state.waiting.length })),
    rows.length
      ? h("div", { class: "scroll", tabindex: 0, role: "region", "aria-labelledby": "waiting-heading" },
        h("table", { id: "waiting-table" },
          h("thead", {}, h("tr", {},
            h("th", { scope: "col" }, t("common.ticket")),
            h("th", { scope: "col" }, t("common.service")),
            h("th", { scope: "col" }, t("common.priority")),
            h("th", { scope: "col" }, t("console.waited")),
            h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, t("console.call"))))),
          h("tbody", {}, rows)))
      : h("p", { class: "empty" }, t("console.queue_empty")),
  );
}

function workArea() {
  const outcomes = ["served", "not_served", "referred"];
  return [
    h("div", { class: "console-grid" },
      h("div", { class: "work" },
        currentVisit(),
        h("div", { class: "actions visit-actions", role: "group", "aria-label": t("console.actions") },
          ACTIONS.slice(0, 7).map(actionButton)),
        h("fieldset", { class: "outcome" },
          h("legend", {}, t("console.outcome")),
          outcomes.map((outcome) => h("label", { class: "radio" },
            h("input", { type: "radio", name: "outcome", value: outcome, checked: state.outcome === outcome,
              onchange: () => { state.outcome = outcome; } }),
            " ", t(`outcome.${outcome}`)))),
        h("div", { class: "field inline" },
          h("label", { for: "transfer-target" }, t("console.transfer_to")),
          h("select", { id: "transfer-target" },
            h("option", { value: "" }, "—"),
            h("optgroup", { label: t("common.service") }, boot.services.map((s) =>
              h("option", { value: `service:${s.id}` }, `${s.letter} · ${localized(s.name)}`))),
            h("optgroup", { label: t("console.counter") }, boot.counters.filter((c) => c.id !== state.counterId).map((c) =>
              h("option", { value: `counter:${c.id}` }, t("console.counter_n", { n: c.number })))))),
        h("div", { class: "field inline" },
          h("label", { for: "call-label" }, t("console.call_ticket_label")),
          h("input", { id: "call-label", autocomplete: "off", placeholder: "A012", size: 6 }),
          actionButton(ACTIONS[7]))),
      waitingList()),
    h("details", { class: "shortcuts" }, h("summary", {}, t("console.shortcuts")),
      h("ul", {}, ACTIONS.map((a) => h("li", {}, h("kbd", {}, a.key.toUpperCase()), " ", t(a.label))))),
  ];
}

/** The counter line: which counter, its state, and open / pause (with a reason) / close. */
function counterLine() {
  const counter = state.counter;
  return h("div", { class: "counter-line" },
    counterChooser(),
    state.counterId
      ? [
          h("p", { class: "counter-state", id: "counter-state", role: "status" },
            counter ? t("console.state_is", { n: counter.number, state: t(`counter.${counter.state}`) }) : t("common.loading"),
            counter?.pause_reason ? ` — ${counter.pause_reason}` : ""),
          h("div", { class: "actions counter-actions", role: "group", "aria-label": t("console.counter") },
            actionButton(ACTIONS[8]),
            h("label", { for: "pause-reason", class: "visually-hidden" }, t("console.pause_reason")),
            h("input", { id: "pause-reason", autocomplete: "off", maxlength: 200, size: 14,
              placeholder: t("console.pause_reason") }),
            actionButton(ACTIONS[9]),
            actionButton(ACTIONS[10])),
        ]
      : null);
}

function render() {
  const focused = document.activeElement?.id;
  const keep = {
    reason: field("pause-reason")?.value ?? "",
    label: field("call-label")?.value ?? "",
    transfer: field("transfer-target")?.value ?? "",
  };
  const needsSignIn = state.auth === "signed_out";
  app.className = "console";
  app.replaceChildren(...[
    h("header", { class: "bar" },
      h("h1", {}, t("console.title")),
      h("p", { class: "branch" }, localized(boot.branch.name)),
      session.user
        ? h("p", { class: "user" }, session.user.name ?? session.user.username ?? "",
            " ", h("button", { type: "button", class: "small", onclick: async () => {
              await signOut(); state.auth = "signed_out"; render(); } }, t("console.signout")))
        : null,
      h("p", { class: "connection", id: "connection", role: "status" }, state.counterId ? t(`display.${state.connection}`) : ""),
      languageSwitcher()),
    state.error ? h("p", { class: "error", role: "alert", id: "error" }, state.error) : null,
    state.message && !state.error ? h("p", { class: "notice", role: "status", id: "message" }, state.message) : null,
    needsSignIn
      ? signInForm(() => {
          state.auth = "signed_in";
          state.error = null;
          const wanted = state.counterId || state.wantedCounter;
          if (wanted) chooseCounter(wanted);
          else render();
        })
      : null,
    !needsSignIn && state.auth !== "checking" ? counterLine() : null,
    !needsSignIn && state.counterId ? workArea() : null,
  ].flat(Infinity).filter(Boolean));
  if (field("pause-reason")) field("pause-reason").value = keep.reason;
  if (field("call-label")) field("call-label").value = keep.label;
  if (field("transfer-target")) field("transfer-target").value = keep.transfer;
  if (focused && field(focused)) field(focused).focus({ preventScroll: true });
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.altKey || event.metaKey || event.repeat) return;
  const target = event.target;
  if (target instanceof HTMLInputElement || target instanceof HTMLSelectElement || target instanceof HTMLTextAreaElement) {
    if (event.key === "Escape") target.blur();
    const submits = { "pause-reason": "pause", "call-label": "call", "transfer-target": "transfer" };
    if (event.key === "Enter" && submits[target.id] && !state.busy) {
      event.preventDefault();
      act(submits[target.id]);
    }
    return;
  }
  if (!state.counterId || state.auth === "signed_out") return;
  const action = ACTIONS.find((a) => a.key === event.key.toLowerCase());
  if (!action) return;
  event.preventDefault();
  // A key pressed while a request runs is queued (its validity is known only after); otherwise
  // an action not valid now says why instead of sending a request that must fail.
  if (!state.busy && !validActions().has(action.id)) {
    state.error = t("console.not_now", { action: t(action.label) });
    render();
    return;
  }
  // Actions that need a detail put the cursor in its field; the others act at once.
  if (action.id === "pause") field("pause-reason").focus();
  else if (action.id === "call") field("call-label").focus();
  else if (action.id === "transfer" && !field("transfer-target").value) field("transfer-target").focus();
  else if (state.busy) state.next = action.id;
  else act(action.id);
});

setInterval(() => {
  const timer = field("visit-timer");
  if (timer) timer.textContent = timerText(timer.dataset.since);
}, 1000);

onLanguageChange(render);

async function main() {
  state.auth = await loadSession();
  const params = new URLSearchParams(location.search);
  let remembered = null;
  try {
    remembered = localStorage.getItem(`${COUNTER_KEY}.${boot.branch.id}`);
  } catch {
    /* nothing remembered */
  }
  const wanted = params.get("counter") || remembered;
  state.wantedCounter = boot.counters.some((c) => c.id === wanted) ? wanted : null;
  render();
  if (state.wantedCounter && state.auth !== "signed_out") chooseCounter(state.wantedCounter);
}

main();
