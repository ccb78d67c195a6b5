// The fairness ledger on the live view: per hour of today, how many appointment, remote and
// priority tickets were called ahead of walk-ins that had waited longer, and the longest
// walk-in wait against its target (over the target is marked, not only coloured).
import { h, t } from "./common.js";

const KINDS = ["appointment", "remote", "priority"];

function hourText(iso) {
  return iso.slice(11, 16);
}

/** The ledger's table, or nothing when the server gave none (an older server, no rights).
 *  `heading`: the section's title (the live view's says "today"). */
export function fairnessSection(ledger, heading = t("live.fairness")) {
  if (!ledger) return null;
  const minutes = (seconds) => Math.round(seconds / 60);
  return h("section", { class: "fairness", "aria-labelledby": "fairness-heading" },
    h("h2", { id: "fairness-heading" }, heading),
    h("p", { class: "hint" }, t("live.fairness_lead")),
    ledger.hours.length
      ? h("table", { id: "fairness-table" },
          h("thead", {}, h("tr", {},
            h("th", { scope: "col" }, t("live.fairness_hour")),
            KINDS.map((kind) => h("th", { scope: "col" }, t(`live.fairness_${kind}`))),
            h("th", { scope: "col" }, t("live.fairness_longest")))),
          h("tbody", {}, ledger.hours.map((hour) => {
            const over = hour.longest_over_target;
            return h("tr", { "data-hour": hourText(hour.hour) },
              h("th", { scope: "row" }, hourText(hour.hour)),
              KINDS.map((kind) => h("td", { "data-kind": kind }, String(hour.ahead_of_walk_ins[kind]))),
              h("td", { class: over ? "over" : null },
                hour.called.walk_in
                  ? t("live.fairness_wait", {
                      wait: minutes(hour.longest_walk_in_wait_s),
                      target: minutes(hour.longest_walk_in_target_s),
                    })
                  : "—",
                over ? ` ⚠ ${t("live.fairness_over")}` : ""));
          })))
      : h("p", { class: "empty" }, t("live.fairness_none")));
}
