// The lobby display: the latest calls big, earlier calls, waiting counts and a clock. It holds
// the board by seq (docs/protocol.md): snapshots replace it, events advance it, a hole in the
// sequence makes it reconnect and resume from the last seq it applied.
import {
  announce,
  audioContext,
  boot,
  chime,
  deviceToken,
  Feed,
  h,
  localized,
  onLanguageChange,
  refreshBoot,
  show,
  t,
} from "./common.js";
import { HallPassCode } from "./hallpass.js";

const BOARD_CALLS = 12;
const BIG_CALLS = 3;
const NEW_CALL_MS = 12_000;
const COUNTER_STATES = { "counter.opened": "open", "counter.paused": "paused", "counter.closed": "closed" };

class Board {
  constructor() {
    this.epoch = null;
    this.seq = null;
    this.calls = [];
    this.waiting = {};
    this.counters = {};
  }

  replace(epoch, seq, board) {
    this.epoch = epoch;
    this.seq = seq;
    this.calls = (board.calls ?? []).slice(0, BOARD_CALLS);
    this.waiting = { ...(board.waiting ?? {}) };
    this.counters = { ...(board.counters ?? {}) };
  }

  /** Apply one event: "applied", "old" (seen before) or "gap" (resume needed). */
  apply(event) {
    if (this.epoch !== null && event.epoch !== this.epoch) return "gap";
    if (this.seq !== null && event.seq <= this.seq) return "old";
    if (this.seq !== null && event.seq !== this.seq + 1) return "gap";
    this.epoch = event.epoch;
    this.seq = event.seq;
    const data = event.data ?? {};
    if (event.kind.startsWith("ticket.")) this.ticket(event.kind, data);
    else if (event.kind in COUNTER_STATES && data.counter_id) {
      const entry = (this.counters[data.counter_id] ??= {});
      entry.state = COUNTER_STATES[event.kind];
      if (data.counter_number != null) entry.number = data.counter_number;
    }
    return "applied";
  }

  ticket(kind, data) {
    const ticket = data.ticket ?? {};
    const service = ticket.service_id;
    if ((kind === "ticket.issued" || kind === "ticket.recycled") && service) {
      this.waiting[service] = (this.waiting[service] ?? 0) + 1;
    }
    if (kind === "ticket.called" || kind === "ticket.recalled") {
      const previous = this.calls.find((call) => call.key === ticket.key);
      if (kind === "ticket.called" && !previous && service) {
        this.waiting[service] = Math.max(0, (this.waiting[service] ?? 0) - 1);
      }
      const call = {
        key: ticket.key, // the board key: boards never see ticket ids
        label: ticket.label,
        service_id: service,
        counter_id: data.counter_id ?? ticket.counter_id,
        counter_number: data.counter_number ?? ticket.counter_number,
        called_at: ticket.called_at,
        recalls: (previous?.recalls ?? 0) + (kind === "ticket.recalled" ? 1 : 0),
      };
      this.calls = [call, ...this.calls.filter((c) => c.key !== ticket.key)].slice(0, BOARD_CALLS);
      return call;
    }
    if (kind === "ticket.cancelled" && service && !this.calls.some((c) => c.key === ticket.key)) {
      this.waiting[service] = Math.max(0, (this.waiting[service] ?? 0) - 1);
    }
    return null;
  }
}

const board = new Board();
// The rotating QR code of the phone page: a phone that scans it in the hall takes a ticket.
const hallPass = new HallPassCode({
  token: deviceToken(),
  className: "hall-pass display-pass",
  onShown: () => {
    fitEarlierCalls();
    paginate();
  },
});
const fresh = new Map(); // board key → when its call (or recall) arrived
const app = document.getElementById("app");
const services = new Map(boot.services.map((s) => [s.id, s]));
let connection = "connecting";
const liveRegion = h("p", { class: "visually-hidden", "aria-live": "assertive", id: "spoken" });
const soundButton = h(
  "button",
  {
    type: "button",
    class: "sound",
    id: "enable-sound",
    onclick: async () => {
      await audioContext()?.resume();
      renderSoundButton();
    },
  },
  "",
);

function renderSoundButton() {
  const context = audioContext();
  soundButton.hidden = !context || context.state === "running";
  soundButton.textContent = t("display.enable_sound");
}

function callTile(call, big) {
  const isNew = fresh.has(call.key);
  return h(
    "li",
    {
      class: `call ${big ? "big" : "small"}${isNew ? " new" : ""}`,
      "data-ticket": call.label,
      "data-counter": call.counter_number,
    },
    isNew ? h("span", { class: "badge" }, t("display.new_call")) : null,
    h("span", { class: "label" }, call.label),
    h("span", { class: "arrow", "aria-hidden": "true" }, "→"),
    h(
      "span",
      { class: "counter" },
      h("small", {}, t("display.counter")),
      " ",
      h("span", { class: "counter-number" }, call.counter_number),
    ),
    call.recalls > 0 ? h("span", { class: "recall" }, t("display.recalled")) : null,
  );
}

/** The services this screen shows: all of the branch's, those of `?area=` (comma-separated
 *  area ids: a service belongs to an area when one of the area's counters serves it), or those
 *  the manager set for `?screen=` on the branch page (its areas and services). */
function screenServices() {
  const query = new URLSearchParams(location.search);
  const screen = (boot.screens ?? []).find((s) => s.id === query.get("screen"));
  const areas = new Set(screen ? screen.areas : (query.get("area") ?? "").split(",").filter(Boolean));
  const named = new Set(screen ? screen.services : []);
  if (!areas.size && !named.size) return boot.services;
  return boot.services.filter((s) => named.has(s.id) || (s.areas ?? []).some((a) => areas.has(a)));
}

/** Queue rows only for services with people waiting, the longest queue first. */
function waitingRows() {
  return screenServices()
    .map((service) => ({ service, count: board.waiting[service.id] ?? 0 }))
    .filter((row) => row.count > 0)
    .sort((a, b) => b.count - a.count || a.service.letter.localeCompare(b.service.letter))
    .map(({ service, count }) =>
      h(
        "li",
        { "data-service": service.id },
        h("span", { class: "letter" }, service.letter),
        h("span", { class: "name" }, localized(service.name)),
        h("span", { class: "count" }, count),
      ),
    );
}

function render() {
  const calls = board.calls;
  const rows = waitingRows();
  show(app,
    h(
      "header",
      { class: "bar" },
      h("h1", {}, localized(boot.branch.name)),
      h("p", { class: `connection ${connection}`, id: "connection", role: "status" }, t(`display.${connection}`)),
      soundButton,
      h("p", { class: "clock", id: "clock" }, clock()),
    ),
    h(
      "section",
      { class: "now", "aria-labelledby": "now-heading" },
      h("h2", { id: "now-heading" }, t("display.now_serving")),
      calls.length
        ? h("ol", { class: "calls big-calls", id: "calls" }, calls.slice(0, BIG_CALLS).map((c) => callTile(c, true)))
        : h("p", { class: "empty" }, t("display.no_calls")),
    ),
    h(
      "div",
      { class: "lower" },
      h(
        "section",
        { class: "previous", "aria-labelledby": "previous-heading" },
        h("h2", { id: "previous-heading" }, t("display.previous")),
        h("ol", { class: "calls small-calls" }, calls.slice(BIG_CALLS).map((c) => callTile(c, false))),
        hallPass.element,
      ),
      h(
        "section",
        { class: "waiting", "aria-labelledby": "waiting-heading" },
        h(
          "h2",
          { id: "waiting-heading" },
          t("display.waiting"),
          " ",
          h("span", { class: "total", id: "waiting-total" }, t("display.people", { n: totalWaiting() })),
          h("span", { class: "page-of", id: "waiting-page" }),
        ),
        rows.length
          ? h("ul", { class: "waiting-list", id: "waiting-list" }, rows)
          : h("p", { class: "empty" }, t("display.nobody_waiting")),
      ),
    ),
    liveRegion,
  );
  document.body.dataset.seq = board.seq ?? "";
  renderSoundButton();
  fitEarlierCalls();
  paginate();
}

/** Show only the earlier calls that fit their box whole (the newest first); never a cut tile. */
function fitEarlierCalls() {
  const list = document.querySelector(".small-calls");
  if (!list) return;
  const bottom = list.getBoundingClientRect().bottom;
  for (const tile of list.children) {
    tile.hidden = false;
    if (tile.getBoundingClientRect().bottom > bottom + 1) tile.hidden = true;
  }
}

function totalWaiting() {
  const shown = new Set(screenServices().map((s) => s.id));
  return Object.entries(board.waiting).reduce((sum, [id, n]) => sum + (shown.has(id) ? n : 0), 0);
}

// ---- pages of queue rows: the screen never scrolls; what does not fit rotates -----------------

const PAGE_MS = 8_000;
const pages = { count: 1, current: 0, timer: null };

/** Split the queue rows into pages that fit the list's box, and show the current page. */
function paginate() {
  const list = document.getElementById("waiting-list");
  const indicator = document.getElementById("waiting-page");
  if (!list) {
    pages.count = 1;
    if (indicator) indicator.textContent = "";
    return;
  }
  const items = [...list.children];
  for (const item of items) item.hidden = false;
  const room = list.clientHeight;
  let page = 0;
  let used = 0;
  for (const item of items) {
    const height = item.offsetHeight;
    if (used > 0 && used + height > room) {
      page += 1;
      used = 0;
    }
    item.dataset.page = String(page);
    used += height;
  }
  pages.count = page + 1;
  if (pages.current >= pages.count) pages.current = 0;
  for (const item of items) item.hidden = Number(item.dataset.page) !== pages.current;
  if (indicator) {
    indicator.textContent = pages.count > 1 ? t("display.page_of", { page: pages.current + 1, pages: pages.count }) : "";
  }
  list.dataset.pages = String(pages.count);
  list.dataset.page = String(pages.current);
}

function turnPage() {
  if (pages.count <= 1) return;
  pages.current = (pages.current + 1) % pages.count;
  paginate();
}

pages.timer = setInterval(turnPage, PAGE_MS);
window.addEventListener("resize", () => {
  fitEarlierCalls();
  paginate();
});

function clock() {
  return new Intl.DateTimeFormat(document.documentElement.lang, {
    hour: "2-digit",
    minute: "2-digit",
    hour12: false,
    timeZone: "Asia/Tbilisi",
  }).format(new Date());
}

function called(call) {
  fresh.set(call.key, Date.now());
  setTimeout(() => {
    fresh.delete(call.key);
    render();
  }, NEW_CALL_MS);
  chime();
  const service = services.get(call.service_id);
  announce(
    liveRegion,
    t("display.spoken_call", { label: call.label, n: call.counter_number, service: localized(service?.name) }),
  );
}

const feed = new Feed(`/ws/branches/${encodeURIComponent(boot.branch.id)}/board`, {
  token: deviceToken(),
  resume: () => ({ epoch: board.epoch, after_seq: board.seq }),
  onState(next, code) {
    connection = next === "live" ? "live" : next === "connecting" ? "connecting" : "offline";
    if (code === 4401 || code === 4403) connection = "needs_setup";
    const status = document.getElementById("connection");
    if (status) {
      status.className = `connection ${connection}`;
      status.textContent = t(`display.${connection}`);
    }
  },
  onMessage(message, source) {
    if (message.type === "snapshot") {
      board.replace(message.epoch, message.seq, message.board);
      render();
    } else if (message.type === "event") {
      if (message.kind === "organisation.changed") refreshBoot().then(render, () => {});
      const before = board.calls[0];
      const outcome = board.apply(message);
      if (outcome === "gap") {
        source.restart();
        return;
      }
      if (outcome === "applied") {
        if (message.kind === "ticket.called" || message.kind === "ticket.recalled") {
          called(board.calls[0] ?? before);
        }
        render();
      }
    }
  },
});

onLanguageChange(() => {
  hallPass.relabel();
  render();
});
setInterval(() => {
  const element = document.getElementById("clock");
  if (element) element.textContent = clock();
}, 1000);
render();
feed.start();
hallPass.start();
window.rigiDisplay = { board, feed, pages, turnPage };
