// "Where can I go now?" (issue 16): for the ticket's service, the other branches of the same
// municipality and region that offer it, each with the wait a walk-in taking a ticket there
// now would have, shortest first. Asked for on a tap only: each answer refreshes the forecasts
// of the branches it names.
import { api, h, localized, notServedText, t } from "./common.js";

export class NearbyBranches {
  /** `changed` is called to redraw after the list opened, loaded or failed. */
  constructor({ branchId, serviceId, changed }) {
    this.path = `/api/v1/branches/${encodeURIComponent(branchId)}/services/${encodeURIComponent(serviceId)}/nearby`;
    this.changed = changed;
    this.state = "closed"; // closed, loading, shown, failed
    this.branches = [];
  }

  async open() {
    this.state = "loading";
    this.changed();
    try {
      this.branches = (await api("GET", this.path)).branches;
      this.state = "shown";
    } catch {
      this.state = "failed";
    }
    this.changed();
    document.getElementById("nearby-result")?.focus({ preventScroll: true });
  }

  element() {
    const result = (attributes, ...children) =>
      h("div", { id: "nearby-result", tabindex: "-1", ...attributes }, ...children);
    return h(
      "section",
      { class: "nearby", id: "nearby", "aria-labelledby": "nearby-heading" },
      h("h2", { id: "nearby-heading" }, t("nearby.heading")),
      this.state === "closed" || this.state === "failed"
        ? h("button", { type: "button", id: "nearby-open", class: "secondary", onclick: () => this.open() },
            t("nearby.show"))
        : null,
      this.state === "loading" ? h("p", { role: "status" }, t("nearby.loading")) : null,
      this.state === "failed" ? result({ role: "alert" }, t("common.offline")) : null,
      this.state === "shown"
        ? this.branches.length
          ? result({}, h("ul", { class: "nearby-list", id: "nearby-list" }, this.branches.map(branchItem)))
          : result({ role: "status" }, h("p", {}, t("nearby.none")))
        : null,
    );
  }
}

function branchItem(branch) {
  return h(
    "li",
    { "data-branch": branch.id },
    h("span", { class: "nearby-name" }, localized(branch.name)),
    h("span", { class: "nearby-wait" }, shortWait(branch)),
  );
}

/** The wait in one line: none, the range when forecast, else minutes; or why there is none. */
function shortWait(branch) {
  if (branch.served_now === false) return notServedText(branch);
  const range = branch.wait_range;
  if (range ? range.p90_min === 0 : branch.wait_minutes === 0) return t("nearby.no_wait");
  if (range) {
    return t("common.wait_range", { low: branch.wait_range.median_min, high: branch.wait_range.p90_min });
  }
  return t("common.minutes", { n: branch.wait_minutes });
}
