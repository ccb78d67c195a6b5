// The branch page: a manager runs their branch without a file or a terminal. Opening hours per
// weekday (a break is the gap between two periods), holidays, the services offered, each
// counter's area and work profile, and the lobby screens, each saved through the organisation
// API (POST /api/v1/branches/{id}/organisation, /counters/{c}/profile): checked whole by the
// server, refused with the field named, and pushed live to the kiosks.
import { api, boot, errorText, h, languageSwitcher, loadSession, localized, onLanguageChange, session, show, signInForm, t } from "./common.js";
import { failureState, newPasswordForm, refusalNotice, savedNotice, saveOrganisation } from "./admin.js";

const app = document.getElementById("app");
const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const state = { branch: null, data: null, error: null, fields: [], saved: null, needsSignIn: false, needsNewPassword: false };

function branchId() {
  return state.branch ?? session.user?.branch ?? boot.branches[0]?.id;
}

const base = () => `/api/v1/branches/${encodeURIComponent(branchId())}`;

async function load() {
  try {
    state.data = await api("GET", `${base()}/organisation`);
    Object.assign(state, { needsSignIn: false, needsNewPassword: false });
  } catch (error) {
    Object.assign(state, failureState(error));
    state.data = null;
  }
  render();
}

/** Save one part; the page shows the fields refused, or what was saved, and reads again. */
function save(what, path, body) {
  return saveOrganisation(state, load, what, path, body);
}

// ---- hours and holidays -------------------------------------------------------------------

function timeInput(id, value, label) {
  return h("input", { id, type: "time", value: value ?? "", "aria-label": label });
}

function hoursForm() {
  const hours = state.data.branch.hours ?? {};
  const rows = WEEKDAYS.map((day) => {
    const [first, second] = hours[day] ?? [];
    const name = t(`branch.day.${day}`);
    return h("tr", { "data-day": day },
      h("th", { scope: "row" }, name),
      h("td", {}, timeInput(`${day}-opens`, first?.opens, `${name}: ${t("branch.opens")}`)),
      h("td", {}, timeInput(`${day}-closes`, first?.closes, `${name}: ${t("branch.closes")}`)),
      h("td", {}, timeInput(`${day}-opens2`, second?.opens, `${name}: ${t("branch.opens_again")}`)),
      h("td", {}, timeInput(`${day}-closes2`, second?.closes, `${name}: ${t("branch.closes_again")}`)));
  });
  const holidays = (state.data.branch.holidays ?? []).join("\n");
  return h("form", {
      id: "hours-form", class: "section",
      onsubmit: (event) => {
        event.preventDefault();
        const value = (id) => document.getElementById(id).value;
        const result = {};
        for (const day of WEEKDAYS) {
          const periods = [];
          if (value(`${day}-opens`) || value(`${day}-closes`)) periods.push({ opens: value(`${day}-opens`), closes: value(`${day}-closes`) });
          if (value(`${day}-opens2`) || value(`${day}-closes2`)) periods.push({ opens: value(`${day}-opens2`), closes: value(`${day}-closes2`) });
          if (periods.length) result[day] = periods;
        }
        const days = value("holidays").split(/\s+/).filter(Boolean);
        save("hours", `${base()}/organisation`, { hours: result, holidays: days });
      },
    },
    h("h2", {}, t("branch.hours")),
    h("p", {}, t("branch.hours_help")),
    h("table", { id: "hours" },
      h("caption", {}, t("branch.hours_caption")),
      h("thead", {}, h("tr", {}, ["day", "opens", "closes", "opens_again", "closes_again"].map((c) => h("th", { scope: "col" }, t(`branch.${c}`))))),
      h("tbody", {}, rows)),
    h("div", { class: "field" },
      h("label", { for: "holidays" }, t("branch.holidays")),
      h("textarea", { id: "holidays", rows: 3 }, holidays)),
    h("button", { type: "submit", class: "primary", id: "save-hours" }, t("admin.save")));
}

// ---- services offered ---------------------------------------------------------------------

function offersForm() {
  const offered = new Set(state.data.offered);
  const byAgency = new Map(state.data.agencies.map((a) => [a.id, []]));
  for (const service of state.data.services) byAgency.get(service.agency)?.push(service);
  return h("form", {
      id: "offers-form", class: "section",
      onsubmit: (event) => {
        event.preventDefault();
        const chosen = [...document.querySelectorAll("#offers-form input[name=offer]:checked")].map((box) => box.value);
        save("offers", `${base()}/organisation`, { offers: chosen });
      },
    },
    h("h2", {}, t("branch.offers")),
    h("p", {}, t("branch.offers_help")),
    state.data.agencies.map((agency) => h("fieldset", { class: "agency" },
      h("legend", {}, localized(agency.name)),
      byAgency.get(agency.id).map((service) => h("label", { class: "check" },
        h("input", { type: "checkbox", name: "offer", value: service.id, checked: offered.has(service.id), "data-service": service.id }),
        ` ${service.letter} · ${localized(service.name)}`)))),
    h("button", { type: "submit", class: "primary", id: "save-offers" }, t("admin.save")));
}

// ---- counters -----------------------------------------------------------------------------

const profileText = (serves) => Object.entries(serves).map(([key, weight]) => `${key}: ${weight}`).join(", ");

function parseProfile(text) {
  const serves = {};
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const [key, weight] = part.split(":").map((p) => p.trim());
    serves[key] = weight === undefined || weight === "" ? 1 : Number(weight);
  }
  return serves;
}

function countersTable() {
  const areas = state.data.branch.areas ?? [];
  return h("section", { class: "section", "aria-labelledby": "counters-title" },
    h("h2", { id: "counters-title" }, t("branch.counters")),
    h("p", {}, t("branch.profile_help")),
    h("table", { id: "counters" },
      h("caption", {}, t("branch.counters_caption")),
      h("thead", {}, h("tr", {}, ["counter", "area", "profile", "actions"].map((c) => h("th", { scope: "col" }, t(`branch.col.${c}`))))),
      h("tbody", {}, state.data.branch.counters.map((counter) => {
        const label = t("branch.counter_n", { n: counter.number });
        return h("tr", { "data-counter": counter.id },
          h("th", { scope: "row" }, label),
          h("td", {}, areas.length
            ? h("select", { id: `area-${counter.id}`, "aria-label": `${label}: ${t("branch.col.area")}` },
                areas.map((a) => h("option", { value: a.id, selected: a.id === counter.area }, localized(a.name))))
            : counter.area),
          h("td", {}, h("input", { id: `profile-${counter.id}`, class: "profile", value: profileText(counter.serves), "aria-label": `${label}: ${t("branch.col.profile")}` })),
          h("td", {}, h("button", {
            type: "button", "data-action": "save-profile",
            onclick: () => save("profile", `${base()}/counters/${encodeURIComponent(counter.id)}/profile`, {
              serves: parseProfile(document.getElementById(`profile-${counter.id}`).value),
              area: document.getElementById(`area-${counter.id}`)?.value ?? null,
            }),
          }, t("admin.save"))));
      }))));
}

// ---- screens ------------------------------------------------------------------------------

function screensForm() {
  const areas = state.data.branch.areas ?? [];
  const screens = state.data.branch.screens ?? [];
  const collect = () => [...document.querySelectorAll("#screens-form [data-screen]")].map((row) => ({
    id: row.dataset.screen,
    name: row.querySelector("input[name=screen-name]").value,
    areas: [...row.querySelectorAll("input[name=screen-area]:checked")].map((box) => box.value),
  }));
  const row = (screen) => h("fieldset", { "data-screen": screen.id, class: "screen" },
    h("legend", {}, screen.name || screen.id),
    h("label", {}, t("branch.screen_name"), " ",
      h("input", { name: "screen-name", value: screen.name, required: true, maxlength: 100 })),
    areas.map((a) => h("label", { class: "check" },
      h("input", { type: "checkbox", name: "screen-area", value: a.id, checked: (screen.areas ?? []).includes(a.id) }),
      ` ${localized(a.name)}`)));
  return h("form", {
      id: "screens-form", class: "section",
      onsubmit: (event) => {
        event.preventDefault();
        save("screens", `${base()}/organisation`, { screens: collect() });
      },
    },
    h("h2", {}, t("branch.screens")),
    h("p", {}, t("branch.screens_help")),
    screens.map(row),
    h("button", { type: "button", id: "add-screen", onclick: () => {
      const next = { id: `s${screens.length + 1}`, name: t("branch.screen_default", { n: screens.length + 1 }), areas: [] };
      state.data.branch.screens = [...collect(), next];
      render();
    } }, t("branch.add_screen")),
    " ",
    h("button", { type: "submit", class: "primary", id: "save-screens" }, t("admin.save")));
}

// ---- conference rooms (a Community Centre's) ------------------------------------------------

/** A room's hours as the page edits them: one period on the days ticked; none: the centre's
 *  own hours (the API takes any periods per weekday, as the branch's hours). */
function roomHours(row) {
  const opens = row.querySelector("input[name=room-opens]").value;
  const closes = row.querySelector("input[name=room-closes]").value;
  if (!opens && !closes) return {};
  const days = [...row.querySelectorAll("input[name=room-day]:checked")].map((box) => box.value);
  return Object.fromEntries(days.map((day) => [day, [{ opens, closes }]]));
}

function roomsForm() {
  const rooms = state.data.branch.rooms ?? [];
  const collect = () => [...document.querySelectorAll("#rooms-form [data-room]")].map((row, index) => {
    const value = (name) => row.querySelector(`input[name=${name}]`).value.trim();
    const capacity = value("room-capacity");
    return {
      id: value("room-id"),
      name: { ...(rooms[index]?.name ?? {}), ka: value("room-name-ka"), en: value("room-name-en") },
      ...(capacity && { capacity: Number(capacity) }),
      hours: roomHours(row),
    };
  });
  const row = (room, index) => {
    const first = Object.values(room.hours ?? {})[0]?.[0];
    const label = (key) => `${room.name?.ka || room.id || index + 1}: ${t(key)}`;
    const input = (name, key, value, extra = {}) => h("label", {}, t(key), " ",
      h("input", { name, value: value ?? "", "aria-label": label(key), ...extra }));
    return h("fieldset", { "data-room": room.id || `new-${index}`, class: "screen room-config" },
      h("legend", {}, localized(room.name) || room.id || t("branch.room_new")),
      input("room-id", "branch.room_id", room.id, { required: true, pattern: "[a-z][a-z0-9_-]{0,63}", maxlength: 64 }),
      input("room-name-ka", "branch.room_name_ka", room.name?.ka, { required: true, maxlength: 200 }),
      input("room-name-en", "branch.room_name_en", room.name?.en, { required: true, maxlength: 200 }),
      input("room-capacity", "branch.room_capacity", room.capacity, { type: "number", min: 1, max: 2000 }),
      input("room-opens", "branch.opens", first?.opens, { type: "time" }),
      input("room-closes", "branch.closes", first?.closes, { type: "time" }),
      h("div", { class: "room-days", role: "group", "aria-label": label("branch.room_days") },
        WEEKDAYS.map((day) => h("label", { class: "check" },
          h("input", { type: "checkbox", name: "room-day", value: day, checked: Boolean(room.hours?.[day]) }),
          ` ${t(`branch.day.${day}`)}`))),
      h("button", { type: "button", "data-action": "remove-room", onclick: () => {
        const kept = collect();
        kept.splice(index, 1);
        state.data.branch.rooms = kept;
        render();
      } }, t("branch.remove_room")));
  };
  return h("form", {
      id: "rooms-form", class: "section",
      onsubmit: (event) => {
        event.preventDefault();
        const chosen = collect();
        // none left: the centre lends its one room again, on its own hours
        save("rooms", `${base()}/organisation`, { rooms: chosen.length ? chosen : null });
      },
    },
    h("h2", {}, t("branch.rooms")),
    h("p", {}, t("branch.rooms_help")),
    rooms.length ? rooms.map(row) : h("p", { class: "empty", id: "rooms-default" }, t("branch.rooms_default")),
    h("button", { type: "button", id: "add-room", onclick: () => {
      const next = { id: `room${rooms.length + 1}`, name: { ka: "", en: "" }, hours: {} };
      state.data.branch.rooms = [...collect(), next];
      render();
    } }, t("branch.add_room")),
    " ",
    h("button", { type: "submit", class: "primary", id: "save-rooms" }, t("admin.save")));
}

// ---- the page -----------------------------------------------------------------------------

function branchPicker() {
  if (session.user?.role !== "admin") return null;
  return h("div", { class: "field" }, h("label", { for: "branch" }, t("people.branch")),
    h("select", { id: "branch", onchange: (e) => { state.branch = e.target.value; state.saved = null; load(); } },
      boot.branches.map((b) => h("option", { value: b.id, selected: b.id === branchId() }, localized(b.name)))));
}

function render() {
  app.className = "admin branch";
  const signedIn = session.user && !state.needsSignIn && !state.needsNewPassword;
  const ready = signedIn && state.data;
  show(app,
    h("header", { class: "bar" }, h("h1", {}, ready ? `${t("branch.title")}: ${localized(state.data.branch.name)}` : t("branch.title"))),
    languageSwitcher(),
    refusalNotice(state),
    savedNotice(state),
    state.needsSignIn ? signInForm(() => load()) : null,
    state.needsNewPassword ? newPasswordForm(() => load()) : null,
    signedIn ? branchPicker() : null,
    ready ? hoursForm() : null,
    ready ? offersForm() : null,
    ready ? countersTable() : null,
    ready ? screensForm() : null,
    ready && state.data.branch.kind === "community_centre" ? roomsForm() : null);
}

onLanguageChange(render);
render();
loadSession().then(() => load());
