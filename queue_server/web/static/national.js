// The national view for the central office: every branch, grouped by region, with people
// waiting, the longest wait against its target, counters open, printers out of paper or offline
// and an alert (colour + icon + text); the country's totals on top. One feed (/ws/national)
// brings a snapshot of every row, then only the rows that change; a click opens /live/{branch}.
import {
  boot,
  currentLanguage,
  Feed,
  h,
  languageSwitcher,
  loadSession,
  localized,
  onLanguageChange,
  session,
  show,
  signInForm,
  signOut,
  t,
} from "./common.js";

const ADMINS = new Set(["admin"]);
const ICONS = { over_target: "⚠", no_counter: "✖", printer: "⚑", near_target: "◐", ok: "✓", closed: "○" };
const ALERT_ORDER = Object.keys(ICONS);
const CLOSE_UNAUTHORIZED = 4401;
const CLOSE_FORBIDDEN = 4403;
const app = document.getElementById("app");
const branches = new Map(boot.branches.map((b) => [b.id, b]));
const state = {
  rows: new Map(),
  totals: null,
  at: null,
  connection: "connecting",
  needsSignIn: false,
  notAdmin: Boolean(boot.forbidden),
};
let feed = null;

function minutes(seconds) {
  return Math.floor((seconds ?? 0) / 60);
}

function regionName(region) {
  const key = `national.region.${region.id}`;
  const text = t(key);
  if (text !== key) return text;
  return region.name ? localized(region.name) : t("national.region.other");
}

function branchName(branch) {
  return localized(branch.name) || branch.id;
}

/** The name without the words every Community Centre's name shares ("Community Centre"). */
function shortName(branch) {
  const common = boot.common_words?.[currentLanguage()];
  const name = branchName(branch);
  if (branch.kind === "hall" || !common) return name;
  const short = name.replace(common.prefix, "").replace(common.suffix, "").trim();
  return short || name;
}

let regionOrder = null; // region id → its branches in order, for the page's language

/** A region's branches: halls first, then by name in the page's language (sorted once per
 *  language, not at every frame: a frame recounts its region's caption). */
function branchesOf(regionId) {
  if (!regionOrder) {
    const collator = new Intl.Collator(document.documentElement.lang);
    const sorted = [...boot.branches].sort((a, b) =>
      a.kind !== b.kind ? (a.kind === "hall" ? -1 : 1) : collator.compare(branchName(a), branchName(b)));
    regionOrder = new Map(boot.regions.map((r) => [r.id, []]));
    for (const branch of sorted) regionOrder.get(branch.region)?.push(branch);
  }
  return regionOrder.get(regionId) ?? [];
}

function alertCell(row) {
  const alert = row?.alert ?? "closed";
  return h("td", { class: `alert-cell ${alert}` },
    h("span", { "aria-hidden": "true" }, `${ICONS[alert]} `), t(`national.alert.${alert}`));
}

function printersText(row) {
  if (!row.printers) return "—";
  const problems = [];
  if (row.printers_paper_out) problems.push(t("national.paper_out", { n: row.printers_paper_out }));
  if (row.printers_offline) problems.push(t("national.offline", { n: row.printers_offline }));
  return problems.length ? problems.join(", ") : t("national.printers_ok");
}

function clockTime(iso) {
  if (!iso) return "—";
  return new Date(iso).toLocaleTimeString(document.documentElement.lang,
    { timeZone: "Asia/Tbilisi", hour: "2-digit", minute: "2-digit", hour12: false });
}

function linkText(link) {
  // Branch nodes (#17) report their link to the centre; the centre's own branches have none.
  // Up: how far central is behind the node; down: since when, and the last event received.
  if (!link) return null;
  const figures = {
    events: link.lag_events ?? 0,
    lag: Math.round(link.lag_s ?? 0),
    since: clockTime(link.last_contact_at),
    at: clockTime(link.last_event?.at),
  };
  return h("span", { class: `link ${link.connected ? "up" : "down"}` },
    " · ", t(link.connected ? "national.link_up" : "national.link_down", figures));
}

function rowElement(branch) {
  const row = state.rows.get(branch.id);
  const cells = row
    ? [
        h("td", { class: "num waiting" }, row.waiting),
        h("td", { class: "num" }, row.longest_target_s
          ? t("national.wait_of_target", { waited: minutes(row.longest_wait_s), target: minutes(row.longest_target_s) })
          : "—"),
        h("td", { class: "num" }, `${row.counters_open} / ${row.counters_total}`),
        h("td", { class: row.printers_paper_out || row.printers_offline ? "printers problem" : "printers" }, printersText(row)),
        alertCell(row),
      ]
    : [h("td", { colspan: 5, class: "empty" }, "…")];
  return h("tr", { id: `row-${branch.id}`, "data-branch": branch.id, class: `branch-row ${branch.kind}` },
    h("th", { scope: "row" },
      h("a", { href: `/live/${encodeURIComponent(branch.id)}`, "aria-label": branchName(branch), title: branchName(branch) },
        shortName(branch)), linkText(row?.link)),
    cells);
}

function regionWaiting(regionId) {
  return branchesOf(regionId).reduce((sum, b) => sum + (state.rows.get(b.id)?.waiting ?? 0), 0);
}

function regionCaption(region) {
  return h("caption", { id: `caption-${region.id}` },
    regionName(region), " · ", t("national.people", { n: regionWaiting(region.id) }));
}

function regionTable(region) {
  return h("table", { class: "region", "data-region": region.id },
    regionCaption(region),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, t("national.branch")),
      h("th", { scope: "col", class: "num" }, t("national.waiting")),
      h("th", { scope: "col", class: "num" }, t("national.longest_of_target")),
      h("th", { scope: "col", class: "num" }, t("national.counters_open")),
      h("th", { scope: "col" }, t("national.printers")),
      h("th", { scope: "col" }, t("national.alert")))),
    h("tbody", {}, branchesOf(region.id).map(rowElement)));
}

function totalsSection() {
  const totals = state.totals;
  if (!totals) return h("section", { id: "totals" });
  const alerts = ALERT_ORDER.filter((a) => a !== "ok" && a !== "closed" && totals.alerts[a])
    .map((a) => h("li", { class: `alert-cell ${a}` }, h("span", { "aria-hidden": "true" }, `${ICONS[a]} `),
      t(`national.alert.${a}`), `: ${totals.alerts[a]}`));
  const facts = [
    ["total-waiting", t("national.total_waiting"), totals.waiting],
    ["total-longest", t("national.total_longest"), t("common.minutes", { n: minutes(totals.longest_wait_s) })],
    ["total-open", t("national.total_open"), `${totals.counters_open} / ${totals.counters_total}`],
    ["total-branches", t("national.total_branches"), totals.branches],
    ["total-printers", t("national.total_printers"), totals.printers_paper_out + totals.printers_offline],
  ];
  return h("section", { id: "totals", "aria-labelledby": "totals-heading" },
    h("h2", { id: "totals-heading" }, t("national.country")),
    h("dl", { class: "total-list" }, facts.map(([id, label, value]) =>
      h("div", { class: "total" }, h("dt", {}, label), h("dd", { id }, value)))),
    alerts.length ? h("ul", { class: "alert-summary", id: "alert-summary" }, alerts) : null);
}

function updatedLine() {
  const time = state.at
    ? new Date(state.at).toLocaleTimeString(document.documentElement.lang, { timeZone: "Asia/Tbilisi", hour12: false })
    : "—";
  return h("p", { class: "updated", id: "updated" }, t("live.updated", { time }));
}

function render() {
  app.className = "national";
  show(app,
    h("header", { class: "bar" },
      h("h1", {}, t("national.title")),
      h("p", { class: "connection", role: "status", id: "connection" }, t(`display.${state.connection}`)),
      languageSwitcher()),
    state.notAdmin
      ? h("div", { class: "notice warn", id: "admins-only", role: "alert" },
          h("p", {}, t("national.admins_only")),
          h("button", { type: "button", onclick: async () => {
            await signOut(); state.notAdmin = false; state.needsSignIn = true; render(); } }, t("console.signout")))
      : null,
    state.needsSignIn && !session.user ? signInForm(() => { state.needsSignIn = false; start(); }) : null,
    state.notAdmin || state.needsSignIn ? null : [
      totalsSection(),
      h("div", { class: "regions", id: "regions" }, boot.regions.map(regionTable)),
      updatedLine(),
    ],
  );
}

/** Apply a feed frame. Only the rows that differ from what is shown are drawn again, with their
 *  regions' captions and the totals: a snapshot after the page painted from its own (or after
 *  a reconnect) changes a few rows, not 211. The whole page is drawn only the first time. */
function apply(message) {
  state.at = message.at;
  state.totals = message.totals;
  const changed = [];
  for (const [id, row] of Object.entries(message.rows)) {
    const known = state.rows.get(id);
    if (known && known.epoch === row.epoch && known.seq > row.seq) continue; // older than ours
    if (known && JSON.stringify(known) === JSON.stringify(row)) continue; // shown as it is
    state.rows.set(id, row);
    changed.push(id);
  }
  if (!document.getElementById("regions")) {
    render();
    return;
  }
  const regions = new Set();
  for (const id of changed) {
    const branch = branches.get(id);
    if (!branch) continue;
    document.getElementById(`row-${id}`)?.replaceWith(rowElement(branch));
    regions.add(branch.region);
  }
  for (const region of boot.regions.filter((r) => regions.has(r.id))) {
    document.getElementById(`caption-${region.id}`)?.replaceWith(regionCaption(region));
  }
  document.getElementById("totals")?.replaceWith(totalsSection());
  document.getElementById("updated")?.replaceWith(updatedLine());
}

function start() {
  if (session.user && !ADMINS.has(session.user.role)) {
    state.notAdmin = true;
    render();
    return;
  }
  if (!session.user) {
    state.needsSignIn = true;
    render();
    return;
  }
  if (!document.getElementById("regions")) render();
  follow();
}

/** Open the feed unless it is open or opening (the page may have opened it before its session
 *  loaded); it reconnects by itself. */
function follow() {
  if (feed) return;
  feed = new Feed("/ws/national", {
    onMessage(message) {
      if (message.type === "snapshot" || message.type === "update") apply(message);
    },
    onState(next, code) {
      if (code === CLOSE_UNAUTHORIZED || code === CLOSE_FORBIDDEN) {
        feed.stop();
        feed = null;
        state.needsSignIn = code === CLOSE_UNAUTHORIZED;
        state.notAdmin = code === CLOSE_FORBIDDEN;
        render();
        return;
      }
      state.connection = next === "live" ? "live" : next === "connecting" ? "connecting" : "offline";
      const status = document.getElementById("connection");
      if (status) status.textContent = t(`display.${state.connection}`);
    },
  }).start();
}

onLanguageChange(() => {
  regionOrder = null;
  render();
});
if (boot.snapshot) {
  // The server saw an administrator and sent every row with the page: paint them now and open
  // the feed at once; the session (for signing out) loads beside it.
  apply(JSON.parse(boot.snapshot));
  follow();
} else {
  render();
}
loadSession().then(start);
