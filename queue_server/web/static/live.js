// The branch live view for managers: totals, alerts (a broken target, a printer without paper),
// the queues with people waiting and the counters, both grouped by area, and printer health.
// Refreshed on every board event and every few seconds (waits grow even when nothing happens).
import {
  api,
  boot,
  deviceToken,
  errorText,
  Feed,
  h,
  keepingFocus,
  languageSwitcher,
  loadSession,
  session,
  signInForm,
  signOut,
  localized,
  onLanguageChange,
  show,
  t,
} from "./common.js";
import { fairnessSection } from "./fairness.js";
import { BroadcastForm } from "./broadcast.js";

const REFRESH_MS = 10_000;
// The fairness ledger reads the whole day's visits (about 0.1 s of server CPU for 15,000):
// once a minute, not on every board event.
const FAIRNESS_EVERY_MS = 60_000;
let fairnessAt = -Infinity;
const DEBOUNCE_MS = 300;
const NEAR_TARGET = 0.8;
const MANAGERS = new Set(["manager", "admin"]);
const app = document.getElementById("app");
const services = new Map(boot.services.map((s) => [s.id, s]));
const areaNames = new Map((boot.areas ?? []).map((a) => [a.id, a.name]));
const base = `/api/v1/branches/${encodeURIComponent(boot.branch.id)}`;
const token = deviceToken();
const state = {
  needsSignIn: false,
  notManager: Boolean(boot.forbidden),
  counters: [],
  queues: [],
  printers: null,
  unspoken: [],
  devices: new Map(),
  error: null,
  updated: null,
  connection: "connecting",
  link: null,
};
let pending = null;
const broadcast = new BroadcastForm({ base, services: boot.services, token, changed: () => render() });
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
const LEVEL_ORDER = { over: 0, near: 1, ok: 2 };

async function refresh() {
  if (session.user && !MANAGERS.has(session.user.role)) {
    state.notManager = true;
    render();
    return;
  }
  try {
    const [counters, queues] = await Promise.all([
      api("GET", `${base}/counters`, undefined, { token }),
      api("GET", `${base}/queues`, undefined, { token }),
    ]);
    // Printer health and device names are extras: the floor shows without them.
    const [printers, devices, unspoken, link, fairness] = await Promise.allSettled([
      api("GET", `${base}/printers`, undefined, { token }),
      api("GET", `${base}/devices`, undefined, { token }),
      api("GET", `${base}/unspoken-calls`, undefined, { token }),
      api("GET", "/api/v1/node/link", undefined, { token }),
      Date.now() - fairnessAt >= FAIRNESS_EVERY_MS
        ? api("GET", `${base}/fairness`, undefined, { token }).then((ledger) => {
            fairnessAt = Date.now();
            return ledger;
          })
        : state.fairness,
    ]);
    // Only a branch node answers: its link to central (docs/offline.md).
    state.link = link.status === "fulfilled" ? link.value : null;
    state.fairness = fairness.status === "fulfilled" ? fairness.value : null;
    Object.assign(state, { counters, queues, error: null, updated: new Date(), notManager: false });
    state.printers = printers.status === "fulfilled" ? printers.value : null;
    state.unspoken = unspoken.status === "fulfilled" ? unspoken.value : [];
    if (devices.status === "fulfilled") state.devices = new Map(devices.value.map((d) => [d.id, d.name]));
    await broadcast.refresh();
  } catch (error) {
    state.needsSignIn = error.status === 401;
    state.error =
      error.status === 401 || error.status === 403 ? t("live.signin_needed") : errorText(error);
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

/** A person as staff know them: "operator:nino" → "nino". */
function personName(actor) {
  if (!actor) return "—";
  const name = actor.includes(":") ? actor.slice(actor.indexOf(":") + 1) : actor;
  return name;
}

function areaOf(serviceId) {
  return services.get(serviceId)?.areas?.[0] ?? "other";
}

function areaTitle(areaId) {
  return areaId === "other" ? t("live.other_area") : localized(areaNames.get(areaId)) || areaId;
}

/** Group items by area, in the branch's order of areas. */
function byArea(items, areaOfItem) {
  const groups = new Map([...(boot.areas ?? []).map((a) => [a.id, []]), ["other", []]]);
  for (const item of items) {
    const area = areaOfItem(item);
    (groups.get(area) ?? groups.get("other")).push(item);
  }
  return [...groups].filter(([, list]) => list.length);
}

function totals() {
  const waiting = state.queues.reduce((sum, q) => sum + q.waiting, 0);
  const longest = Math.max(0, ...state.queues.map((q) => q.longest_wait_s ?? 0));
  const count = (st) => state.counters.filter((c) => c.state === st).length;
  const facts = [
    ["total-waiting", t("live.total_waiting"), waiting],
    ["total-queues", t("live.total_queues"), state.queues.filter((q) => q.waiting).length],
    ["total-open", t("live.total_open"), `${count("open")} / ${state.counters.length}`],
    ["total-paused", t("live.total_paused"), count("paused")],
    ["total-longest", t("live.longest"), t("common.minutes", { n: minutes(longest) })],
    ["total-over", t("live.total_over"), state.queues.filter((q) => level(q) === "over").length],
  ];
  return h("section", { class: "totals", "aria-labelledby": "totals-heading" },
    h("h2", { id: "totals-heading", class: "visually-hidden" }, t("live.totals")),
    h("dl", { class: "total-list" }, facts.map(([id, label, value]) =>
      h("div", { class: "total" }, h("dt", {}, label), h("dd", { id }, value)))));
}

function printerProblems() {
  return (state.printers ?? []).filter((p) => !p.connected || p.online === false || p.paper === "out" || p.paper === "near_end");
}

function printerName(printer) {
  return state.devices.get(printer.id) ?? printer.id;
}

function alerts() {
  const over = state.queues.filter((q) => level(q) === "over");
  const printers = printerProblems();
  const items = [
    ...over.map((q) => h("li", { class: "alert" },
      h("span", { "aria-hidden": "true" }, "⚠ "),
      t("live.alert_text", {
        service: `${q.letter} · ${localized(services.get(q.service_id)?.name)}`,
        waited: minutes(q.longest_wait_s),
        target: minutes(q.target_wait_s),
        n: q.waiting,
      }))),
    ...printers.map((p) => h("li", { class: "alert", "data-printer": p.id },
      h("span", { "aria-hidden": "true" }, "⚠ "),
      t("live.printer_alert", { name: printerName(p), problem: printerState(p) }))),
    // A call a display could not speak: that citizen may not have heard it.
    ...state.unspoken.map((u) => h("li", { class: "alert unspoken", "data-unspoken": u.label },
      h("span", { "aria-hidden": "true" }, "⚠ "),
      t("live.unspoken_alert", {
        display: u.display,
        label: u.label,
        n: u.counter_number,
        time: new Date(u.at).toLocaleTimeString(document.documentElement.lang, { timeZone: "Asia/Tbilisi", hour12: false, hour: "2-digit", minute: "2-digit" }),
      }))),
  ];
  return h("section", { class: "alerts", "aria-labelledby": "alerts-heading", "aria-live": "polite" },
    h("h2", { id: "alerts-heading" }, t("live.alerts")),
    items.length
      ? h("ul", { id: "alerts" }, items)
      : h("p", { class: "ok-line" }, h("span", { "aria-hidden": "true" }, "✓ "), t("live.no_alerts")));
}

function queuesSection() {
  const waiting = state.queues
    .filter((q) => q.waiting > 0)
    .sort((a, b) => LEVEL_ORDER[level(a)] - LEVEL_ORDER[level(b)] || b.longest_wait_s - a.longest_wait_s);
  const groups = byArea(waiting, (q) => areaOf(q.service_id));
  return h("section", { "aria-labelledby": "queues-heading", id: "queues" },
    h("h2", { id: "queues-heading" }, t("live.queues")),
    groups.length ? null : h("p", { class: "empty" }, t("live.nobody_waiting")),
    groups.map(([area, queues]) => h("table", { class: "area-queues", "data-area": area },
      h("caption", {}, areaTitle(area), " · ", t("live.people", { n: queues.reduce((s, q) => s + q.waiting, 0) })),
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, t("common.service")),
        h("th", { scope: "col", class: "num" }, t("live.waiting")),
        h("th", { scope: "col", class: "num" }, t("live.longest_of_target")),
        h("th", { scope: "col" }, t("common.status")))),
      h("tbody", {}, queues.map((q) => {
        const lvl = level(q);
        const name = `${q.letter} · ${localized(services.get(q.service_id)?.name)}`;
        return h("tr", { class: `level-row ${lvl}`, "data-service": q.service_id },
          h("th", { scope: "row", title: name }, name),
          h("td", { class: "num" }, q.waiting),
          h("td", { class: "num" }, t("console.wait_of_target", { waited: minutes(q.longest_wait_s), target: minutes(q.target_wait_s) })),
          h("td", { class: `level ${lvl}` }, h("span", { "aria-hidden": "true" }, `${ICONS[lvl]} `),
            h("span", { class: lvl === "ok" ? "visually-hidden" : null }, t(`level.${lvl}`))));
      })))));
}

function countersSection() {
  const groups = byArea(state.counters, (c) => (areaNames.has(c.area) ? c.area : "other"));
  return h("section", { "aria-labelledby": "counters-heading", id: "counters" },
    h("h2", { id: "counters-heading" }, t("live.counters")),
    groups.map(([area, counters]) => h("div", { class: "area-counters", "data-area": area },
      h("h3", {}, areaTitle(area)),
      h("ul", { class: "counter-tiles" }, counters.map((c) => h("li", { class: `counter-tile ${c.state}`, "data-counter": c.counter_id },
        h("span", { class: "number" }, t("console.counter_n", { n: c.number })),
        h("span", { class: `state ${c.state}` }, h("span", { "aria-hidden": "true" }, `${ICONS[c.state] ?? ""} `),
          t(`counter.${c.state}`), c.pause_reason ? ` — ${c.pause_reason}` : ""),
        h("span", { class: "operator" }, personName(c.operator)),
        h("span", { class: "current" }, c.current_ticket_id ? (callLabels.get(c.counter_id) ?? "●") : "—")))))));
}

function printerState(printer) {
  if (!printer.connected) return t("live.printer_disconnected");
  if (printer.online === false) return t("live.printer_offline");
  return t(`live.paper_${printer.paper}`);
}

function printersSection() {
  if (state.printers === null) return null;
  return h("section", { "aria-labelledby": "printers-heading", id: "printers" },
    h("h2", { id: "printers-heading" }, t("live.printers")),
    state.printers.length
      ? h("ul", { class: "printer-list" }, state.printers.map((p) => {
          const problem = printerProblems().includes(p);
          return h("li", { class: problem ? "printer problem" : "printer", "data-printer": p.id },
            h("span", { "aria-hidden": "true" }, problem ? "⚠ " : "✓ "),
            h("strong", {}, printerName(p)), " — ", printerState(p),
            p.kiosks.length ? ` (${p.kiosks.map((k) => state.devices.get(k) ?? k).join(", ")})` : "");
        }))
      : h("p", { class: "empty" }, t("live.no_printers")));
}

/** A branch node's link to central: the centre serves either way, this says what is unsent. */
function linkStatus() {
  const link = state.link;
  if (!link) return null;
  const waiting = link.waiting_events ?? 0;
  let text = t("live.link_up");
  if (!link.connected) {
    const since = link.last_ack_at
      ? new Date(link.last_ack_at).toLocaleTimeString(document.documentElement.lang, { timeZone: "Asia/Tbilisi", hour12: false })
      : "—";
    text = t("live.link_down", { time: since, n: waiting });
  } else if (waiting) {
    text = t("live.link_behind", { n: waiting });
  }
  return h("p", { class: link.connected ? "link" : "link warn", id: "node-link", role: "status" }, text);
}

function render() {
  keepingFocus(draw);
}

function draw() {
  app.className = "live";
  const signedInElsewhere = state.notManager;
  show(app,
    h("header", { class: "bar" },
      h("h1", {}, t("live.title")),
      h("p", { class: "branch" }, localized(boot.branch.name)),
      h("p", { class: "connection", role: "status", id: "connection" }, t(`display.${state.connection}`)),
      linkStatus(),
      languageSwitcher()),
    signedInElsewhere
      ? h("div", { class: "notice warn", id: "managers-only", role: "alert" },
          h("p", {}, t("live.managers_only")),
          h("button", { type: "button", onclick: async () => {
            await signOut(); state.notManager = false; state.needsSignIn = true; render(); } }, t("console.signout")))
      : null,
    state.error && !signedInElsewhere ? h("p", { class: "error", role: "alert" }, state.error) : null,
    state.needsSignIn && !session.user
      ? signInForm(() => { state.needsSignIn = false; refresh(); feed.reconnectNow(); })
      : null,
    signedInElsewhere || state.needsSignIn ? null : [
      totals(),
      alerts(),
      // the floor's queues on the left; counters, printers, the day's fairness ledger and the
      // message to everyone waiting beside them (the queue tables are the longer column)
      h("div", { class: "live-grid" }, queuesSection(),
        h("div", {}, countersSection(), printersSection(), fairnessSection(state.fairness), broadcast.element())),
      state.updated
        ? h("p", { class: "updated" }, t("live.updated", { time: state.updated.toLocaleTimeString(document.documentElement.lang, { timeZone: "Asia/Tbilisi", hour12: false }) }))
        : null,
    ],
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
