// The branch live view for managers: every counter and every queue against its target, with
// alerts when a target is broken. Refreshed on every board event and every few seconds (waits
// grow with time even when nothing happens).
import {
  api,
  boot,
  deviceToken,
  Feed,
  h,
  languageSwitcher,
  loadSession,
  session,
  signInForm,
  localized,
  onLanguageChange,
  show,
  t,
} from "./common.js";

const REFRESH_MS = 10_000;
const DEBOUNCE_MS = 300;
const NEAR_TARGET = 0.8;
const app = document.getElementById("app");
const services = new Map(boot.services.map((s) => [s.id, s]));
const base = `/api/v1/branches/${encodeURIComponent(boot.branch.id)}`;
const token = deviceToken();
const state = { needsSignIn: false, counters: [], queues: [], error: null, updated: null, connection: "connecting" };
let pending = null;
// counter id → label of its latest call, learnt from the board feed (a counter's visit in hand
// is its latest call; boards carry no ticket ids)
const callLabels = new Map();

function level(queue) {
  if (!queue.waiting) return "ok";
  if (queue.longest_wait_s > queue.target_wait_s) return "over";
  if (queue.longest_wait_s >= queue.target_wait_s * NEAR_TARGET) return "near";
  return "ok";
}

const ICONS = { ok: "✓", near: "◐", over: "⚠", open: "●", paused: "Ⅱ", closed: "○" };

async function refresh() {
  try {
    const [counters, queues] = await Promise.all([
      api("GET", `${base}/counters`, undefined, { token }),
      api("GET", `${base}/queues`, undefined, { token }),
    ]);
    Object.assign(state, { counters, queues, error: null, updated: new Date() });
  } catch (error) {
    state.needsSignIn = error.status === 401;
    state.error =
      error.status === 401 || error.status === 403 ? t("live.signin_needed") : t("common.offline");
  }
  render();
}

function soon() {
  clearTimeout(pending);
  pending = setTimeout(refresh, DEBOUNCE_MS);
}

function minutes(seconds) {
  return Math.floor(seconds / 60);
}

function render() {
  const alerts = state.queues.filter((q) => level(q) === "over");
  app.className = "live";
  show(app, 
    h("header", { class: "bar" },
      h("h1", {}, t("live.title")),
      h("p", { class: "branch" }, localized(boot.branch.name)),
      h("p", { class: "connection", role: "status", id: "connection" }, t(`display.${state.connection}`))),
    languageSwitcher(),
    state.error ? h("p", { class: "error", role: "alert" }, state.error) : null,
    state.needsSignIn && !session.user ? signInForm(() => { state.needsSignIn = false; refresh(); feed.reconnectNow(); }) : null,
    h("section", { class: "alerts", "aria-labelledby": "alerts-heading", "aria-live": "polite" },
      h("h2", { id: "alerts-heading" }, t("live.alerts")),
      alerts.length
        ? h("ul", { id: "alerts" }, alerts.map((q) => h("li", { class: "alert" },
            h("span", { "aria-hidden": "true" }, "⚠ "),
            t("live.alert_text", {
              service: `${q.letter} · ${localized(services.get(q.service_id)?.name)}`,
              waited: minutes(q.longest_wait_s),
              target: minutes(q.target_wait_s),
              n: q.waiting,
            }))))
        : h("p", { class: "ok-line" }, h("span", { "aria-hidden": "true" }, "✓ "), t("live.no_alerts"))),
    h("div", { class: "live-grid" },
      h("section", { "aria-labelledby": "queues-heading" },
        h("h2", { id: "queues-heading" }, t("live.queues")),
        h("table", { id: "queues" },
          h("thead", {}, h("tr", {},
            h("th", { scope: "col" }, t("common.service")),
            h("th", { scope: "col" }, t("live.waiting")),
            h("th", { scope: "col" }, t("live.longest")),
            h("th", { scope: "col" }, t("live.target")),
            h("th", { scope: "col" }, t("common.status")))),
          h("tbody", {}, state.queues.map((q) => {
            const lvl = level(q);
            return h("tr", { class: `level-row ${lvl}`, "data-service": q.service_id },
              h("th", { scope: "row" }, `${q.letter} · ${localized(services.get(q.service_id)?.name)}`),
              h("td", {}, q.waiting),
              h("td", {}, t("common.minutes", { n: minutes(q.longest_wait_s) })),
              h("td", {}, t("common.minutes", { n: minutes(q.target_wait_s) })),
              h("td", { class: `level ${lvl}` }, h("span", { "aria-hidden": "true" }, `${ICONS[lvl]} `), t(`level.${lvl}`)));
          })))),
      h("section", { "aria-labelledby": "counters-heading" },
        h("h2", { id: "counters-heading" }, t("live.counters")),
        h("table", { id: "counters" },
          h("thead", {}, h("tr", {},
            h("th", { scope: "col" }, t("console.counter")),
            h("th", { scope: "col" }, t("common.status")),
            h("th", { scope: "col" }, t("live.operator")),
            h("th", { scope: "col" }, t("live.current")))),
          h("tbody", {}, state.counters.map((c) => h("tr", { "data-counter": c.counter_id },
            h("th", { scope: "row" }, c.number),
            h("td", { class: `state ${c.state}` }, h("span", { "aria-hidden": "true" }, `${ICONS[c.state] ?? ""} `),
              t(`counter.${c.state}`), c.pause_reason ? ` — ${c.pause_reason}` : ""),
            h("td", {}, c.operator ?? "—"),
            h("td", {}, c.current_ticket_id ? (callLabels.get(c.counter_id) ?? "●") : "—"))))))),
    state.updated
      ? h("p", { class: "updated" }, t("live.updated", { time: state.updated.toLocaleTimeString(document.documentElement.lang, { timeZone: "Asia/Tbilisi", hour12: false }) }))
      : null,
  );
}

onLanguageChange(render);
render();
loadSession().then(refresh);
setInterval(refresh, REFRESH_MS);
const feed = new Feed(`/ws/branches/${encodeURIComponent(boot.branch.id)}/board`, {
  token,
  onMessage(message) {
    if (message.type === "snapshot") {
      callLabels.clear();
      // newest first: the first call of each counter is its latest
      for (const call of message.board.calls ?? []) {
        if (!callLabels.has(call.counter_id)) callLabels.set(call.counter_id, call.label);
      }
    }
    const ticket = message.data?.ticket;
    if (message.kind === "ticket.called" || message.kind === "ticket.recalled") {
      callLabels.set(message.data.counter_id ?? ticket?.counter_id, ticket?.label);
    }
    if (message.type === "event" || message.type === "snapshot") soon();
  },
  onState(next) {
    state.connection = next === "live" ? "live" : next === "connecting" ? "connecting" : "offline";
    const status = document.getElementById("connection");
    if (status) status.textContent = t(`display.${state.connection}`);
  },
}).start();
