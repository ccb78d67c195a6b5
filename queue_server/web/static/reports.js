// The reports page: a period and a slice, the key figures against the previous period, charts
// (uPlot, served by this server from /static/vendor) and tables, each downloadable as CSV, and
// the whole report as an Excel workbook. The API decides what the signed-in person may see.
import uPlot from "./vendor/uplot/uPlot.esm.js";
import { api, boot, h, loadSession, localized, show, signInForm, t } from "./common.js";
import { fairnessSection } from "./fairness.js";

const app = document.getElementById("app");
const texts = boot.report_messages;
const base = boot.branch
  ? `/api/v1/branches/${encodeURIComponent(boot.branch.id)}/reports`
  : "/api/v1/reports";
const FIGURES = [
  ["visits", "count"], ["served", "count"], ["not_served", "count"], ["no_show", "count"],
  ["cancelled", "count"], ["transferred", "count"], ["recalls", "count"],
  ["mean_wait_s", "duration"], ["median_wait_s", "duration"], ["p90_wait_s", "duration"],
  ["service_level", "share"], ["mean_service_s", "duration"], ["p90_service_s", "duration"],
  ["no_show_rate", "share"], ["cancellation_rate", "share"],
  ["estimate_mae_s", "duration"], ["estimate_bias_s", "duration"], ["range_coverage", "share"],
];
const LABELS = {
  mean_wait_s: "mean_wait", median_wait_s: "median_wait", p90_wait_s: "p90_wait",
  mean_service_s: "mean_service", p90_service_s: "p90_service",
  estimate_mae_s: "estimate_mae", estimate_bias_s: "estimate_bias",
};
const CHANNELS = ["kiosk", "phone", "appointment", "transfer"];
const PRIORITIES = ["normal", "priority", "appointment"];
const charts = [];
const DAY_S = 86_400;
const TIMEZONE = "Asia/Tbilisi"; // every branch's; reports count days in it

function tr(key, vars = {}) {
  const text = texts[`reports.${key}`] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

function daysBefore(last, days) {
  const date = new Date(`${last}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() - days + 1);
  return isoDay(date);
}

function format(value, kind) {
  if (value === null || value === undefined) return "–";
  if (kind === "duration") return tr("minutes", { n: (value / 60).toFixed(1) });
  if (kind === "share") return `${(value * 100).toFixed(1)}%`;
  return String(value);
}

function serviceName(id) {
  const service = boot.services.find((s) => s.id === id);
  return service ? localized(service.name) : id;
}

function query(form) {
  const params = new URLSearchParams();
  for (const name of ["from", "to", "service", "channel", "priority"]) {
    const value = form.elements[name].value;
    if (value) params.set(name, value);
  }
  return params;
}

function select(name, values, label) {
  return h(
    "div",
    { class: "field" },
    h("label", { for: `f-${name}` }, tr(name)),
    h(
      "select",
      { id: `f-${name}`, name },
      h("option", { value: "" }, tr("all")),
      values.map((value) => h("option", { value }, label(value))),
    ),
  );
}

function controls(today) {
  const form = h(
    "form",
    { class: "report-controls", onsubmit: (event) => { event.preventDefault(); load(form); } },
    h("fieldset", {},
      h("legend", {}, tr("period")),
      h("div", { class: "field" }, h("label", { for: "f-from" }, tr("from")),
        h("input", { id: "f-from", name: "from", type: "date", value: daysBefore(today, 7) })),
      h("div", { class: "field" }, h("label", { for: "f-to" }, tr("to")),
        h("input", { id: "f-to", name: "to", type: "date", value: today })),
      [7, 30, 365].map((days) =>
        h("button", { type: "button", onclick: () => {
          form.elements.to.value = today;
          form.elements.from.value = daysBefore(today, days);
          load(form);
        } }, tr(`last_${days}`)),
      ),
    ),
    select("service", boot.services.map((s) => s.id), serviceName),
    select("channel", CHANNELS, (c) => tr(`channel.${c}`)),
    select("priority", PRIORITIES, (p) => tr(`priority.${p}`)),
    h("button", { type: "submit", class: "primary", id: "show" }, tr("show")),
  );
  return form;
}

function downloads(params, table) {
  const csv = new URLSearchParams(params);
  csv.set("table", table);
  return h("a", { class: "download", href: `${base}.csv?${csv}`, download: "" }, tr("download_csv"));
}

function table(caption, columns, rows, params, name) {
  return h(
    "section",
    { class: "report-table", "aria-labelledby": `h-${name}` },
    h("h2", { id: `h-${name}` }, caption),
    downloads(params, name),
    rows.length === 0
      ? h("p", {}, tr("no_data"))
      : h("table", {},
          h("thead", {}, h("tr", {}, columns.map(([label]) => h("th", { scope: "col" }, label)))),
          h("tbody", {}, rows.map((row) => h("tr", {}, columns.map(([, cell]) => h("td", {}, cell(row)))))),
        ),
  );
}

function kpiTable(report, params) {
  const rows = FIGURES.map(([name, kind]) => ({ name, kind }));
  return table(tr("kpis"), [
    [tr("kpis"), (r) => tr(LABELS[r.name] ?? r.name)],
    [`${report.period.from} – ${report.period.to}`, (r) => format(report.kpis[r.name], r.kind)],
    [tr("previous"), (r) => format(report.previous[r.name], r.kind)],
  ], rows, params, "kpis");
}

function heatmap(report) {
  const counts = new Map(report.heatmap.map((c) => [`${c.weekday}:${c.hour}`, c.arrivals]));
  const hours = report.heatmap.map((c) => c.hour);
  if (hours.length === 0) return null;
  const first = Math.min(...hours);
  const last = Math.max(...hours);
  const most = Math.max(...report.heatmap.map((c) => c.arrivals));
  const range = Array.from({ length: last - first + 1 }, (_, i) => first + i);
  return h(
    "section",
    { class: "heatmap", "aria-labelledby": "h-heatmap" },
    h("h2", { id: "h-heatmap" }, tr("heatmap")),
    h("p", {}, tr("heatmap_caption")),
    h("table", {},
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, tr("weekday")),
        range.map((hour) => h("th", { scope: "col" }, String(hour))))),
      h("tbody", {}, [0, 1, 2, 3, 4, 5, 6].map((day) =>
        h("tr", {}, h("th", { scope: "row" }, tr(`wd${day}`)), range.map((hour) => {
          const count = counts.get(`${day}:${hour}`) ?? 0;
          const level = count === 0 ? 0 : Math.ceil((count / most) * 4);
          return h("td", { class: `heat heat-${level}` }, String(count));
        })),
      )),
    ),
  );
}

function chart(target, title, options, data) {
  const holder = h("figure", { class: "chart" }, h("figcaption", {}, title));
  target.append(holder);
  const width = Math.min(900, app.clientWidth - 32);
  charts.push(new uPlot({ width, height: 260, ...options }, data, holder));
}

function dayChart(target, report) {
  const days = report.days;
  if (days.length === 0) return;
  const x = days.map((d) => Date.parse(`${d.date}T12:00:00Z`) / 1000);
  chart(target, tr("chart_day"), {
    scales: { x: { time: true, range: () => [x[0] - DAY_S, x[x.length - 1] + DAY_S] }, waits: { auto: true } },
    series: [
      {},
      { label: tr("visits"), stroke: "#0b4f9c", fill: "rgba(11,79,156,0.25)", paths: uPlot.paths.bars({ size: [0.6, 60] }) },
      { label: tr("mean_wait"), stroke: "#a50e0e", width: 2, scale: "waits" },
    ],
    axes: [{}, { label: tr("visits") }, { side: 1, scale: "waits", label: tr("mean_wait"), grid: { show: false } }],
  }, [x, days.map((d) => d.visits), days.map((d) => (d.mean_wait_s === null ? null : d.mean_wait_s / 60))]);
}

function serviceChart(target, report) {
  const services = report.services;
  if (services.length === 0) return;
  const names = services.map((s) => serviceName(s.service_id));
  chart(target, tr("chart_service"), {
    scales: { x: { time: false, range: () => [-0.5, services.length - 0.5] } },
    series: [{}, { label: tr("visits"), stroke: "#0b4f9c", fill: "rgba(11,79,156,0.4)", paths: uPlot.paths.bars({ size: [0.6, 80] }) }],
    axes: [{ values: (_, ticks) => ticks.map((i) => names[i] ?? ""), incrs: [1] }, {}],
  }, [services.map((_, i) => i), services.map((s) => s.visits)]);
}

function render(report, params) {
  for (const old of charts.splice(0)) old.destroy();
  const results = document.getElementById("results");
  const xlsx = h("a", { class: "download", href: `${base}.xlsx?${params}`, download: "" }, tr("download_xlsx"));
  const chartArea = h("div", { class: "charts" });
  show(
    results,
    h("p", {}, xlsx),
    kpiTable(report, params),
    chartArea,
    heatmap(report),
    table(tr("by_service"), [
      [tr("service"), (s) => serviceName(s.service_id)],
      [tr("visits"), (s) => s.visits],
      [tr("served"), (s) => s.served],
      [tr("mean_wait"), (s) => format(s.mean_wait_s, "duration")],
      [tr("p90_wait"), (s) => format(s.p90_wait_s, "duration")],
      [tr("service_level"), (s) => format(s.service_level, "share")],
    ], report.services, params, "services"),
    // The network's view: each branch's forecast error and how often its promised range held.
    boot.branch ? null : table(tr("by_branch_accuracy"), [
      [tr("branch"), (b) => b.branch_id],
      [tr("visits"), (b) => b.visits],
      [tr("estimate_mae"), (b) => format(b.estimate_mae_s, "duration")],
      [tr("estimate_bias"), (b) => format(b.estimate_bias_s, "duration")],
      [tr("range_coverage"), (b) => format(b.range_coverage, "share")],
    ], report.branches, params, "branches"),
    table(tr("counters"), [
      [tr("counter"), (c) => c.counter_id],
      [tr("operator"), (c) => c.operator ?? "–"],
      [tr("serving"), (c) => format(c.serving_s, "duration")],
      [tr("idle"), (c) => format(c.idle_s, "duration")],
      [tr("paused"), (c) => format(c.paused_s, "duration")],
      [tr("closed"), (c) => format(c.closed_s, "duration")],
      [tr("utilisation"), (c) => format(c.utilisation, "share")],
    ], report.counters, params, "counters"),
    table(tr("longest"), [
      [tr("ticket"), (w) => w.label],
      [tr("service"), (w) => serviceName(w.service_id)],
      [tr("issued"), (w) => new Date(w.issued_at).toLocaleString(boot.lang, { timeZone: TIMEZONE })],
      [tr("wait"), (w) => format(w.wait_s, "duration")],
      [tr("target"), (w) => format(w.target_wait_s, "duration")],
      [tr("outcome"), (w) => (w.outcome ? tr(w.outcome) : "–")],
    ], report.longest_waits, params, "longest_waits"),
  );
  dayChart(chartArea, report);
  serviceChart(chartArea, report);
  if (boot.branch) ratings(results, params).then(() => fairness(results, params));
}

/** The fairness ledger of the period's last day, by hour: managers only (issue 19). */
async function fairness(results, params) {
  const day = params.get("to") || new Date().toLocaleDateString("en-CA", { timeZone: TIMEZONE });
  let ledger;
  try {
    ledger = await api("GET", `/api/v1/branches/${encodeURIComponent(boot.branch.id)}/fairness?date=${encodeURIComponent(day)}`);
  } catch {
    return; // not a manager: the report goes without it
  }
  results.append(fairnessSection(ledger, t("live.fairness_day", { day })));
}

/** Citizens' ratings (1–5) per service over the same period: managers only; an operator's
 *  report goes without them. Comments are never shown here. */
async function ratings(results, params) {
  const period = new URLSearchParams();
  for (const name of ["from", "to"]) if (params.get(name)) period.set(name, params.get(name));
  let summary;
  try {
    summary = await api("GET", `/api/v1/branches/${encodeURIComponent(boot.branch.id)}/feedback?${period}`);
  } catch {
    return; // not a manager: the report goes without ratings
  }
  const mean = (value) => (value === null || value === undefined ? "–" : value.toFixed(2));
  results.append(h(
    "section",
    { class: "report-table", id: "ratings", "aria-labelledby": "h-ratings" },
    h("h2", { id: "h-ratings" }, tr("ratings")),
    summary.ratings === 0
      ? h("p", {}, tr("no_data"))
      : h("table", {},
          h("thead", {}, h("tr", {}, [tr("service"), tr("ratings_count"), tr("mean_rating")].map((label) => h("th", { scope: "col" }, label)))),
          h("tbody", {},
            summary.services.map((row) => h("tr", {}, h("td", {}, serviceName(row.service_id)), h("td", {}, row.ratings), h("td", {}, mean(row.mean)))),
            h("tr", { class: "total" }, h("th", { scope: "row" }, tr("all")), h("td", {}, summary.ratings), h("td", {}, mean(summary.mean))))),
  ));
}

async function load(form) {
  const params = query(form);
  const results = document.getElementById("results");
  try {
    render(await api("GET", `${base}?${params}`), params);
  } catch (error) {
    if (error.status === 401) {
      show(results, signInForm(() => load(form)));
    } else {
      const message = error.status === 403 ? tr("forbidden") : error.message;
      show(results, h("p", { class: "error", role: "alert" }, message));
    }
  }
}

function languages() {
  return h("nav", { class: "languages", "aria-label": "Language" }, boot.languages.map(({ code, name }) =>
    h("a", { class: "language", lang: code, href: `?lang=${code}`, "aria-current": code === boot.lang ? "true" : null }, name),
  ));
}

async function start() {
  document.head.append(h("link", { rel: "stylesheet", href: "/static/vendor/uplot/uPlot.min.css" }));
  document.head.append(h("link", { rel: "stylesheet", href: "/static/reports.css" }));
  document.title = tr("title");
  await loadSession();
  // Today in Tbilisi, as reports count days (after 20:00 UTC the UTC date is yesterday there).
  const today = new Date().toLocaleDateString("en-CA", { timeZone: TIMEZONE });
  const form = controls(today);
  show(
    app,
    h("header", { class: "bar" },
      h("h1", {}, tr("heading")),
      h("p", { class: "branch" }, boot.branch ? localized(boot.branch.name) : tr("network"))),
    languages(),
    form,
    h("div", { id: "results", "aria-live": "polite" }),
  );
  load(form);
}

start();
