// Days and times in a branch's own time zone, named from the page's catalogue (browsers' own
// Georgian and Armenian date names are missing or partial). Shared by the booking and room pages.
import { t } from "./common.js";

/** A time in the branch's time zone (24 hours; the same digits in every language). */
export function timeOf(iso, timezone) {
  const format = { timeZone: timezone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  return new Intl.DateTimeFormat("en-GB", format).format(new Date(iso));
}

/** "სამშაბათი, 3 ივნისი": the day of `iso` in the branch's time zone. */
export function dayOf(iso, timezone) {
  const date = new Intl.DateTimeFormat("en-CA", { timeZone: timezone }).format(new Date(iso));
  const [year, month, day] = date.split("-").map(Number);
  const weekday = (new Date(Date.UTC(year, month - 1, day)).getUTCDay() + 6) % 7;
  return t("book.date", {
    weekday: t("book.weekdays").split(",")[weekday],
    day,
    month: t("book.months").split(",")[month - 1],
  });
}

/** The bookable days from the branch's today: its weekdays (Monday = 0), `days_ahead` ahead. */
export function bookableDays(rules) {
  const days = [];
  const start = Date.parse(`${rules.today}T12:00:00Z`);
  for (let offset = 0; offset <= rules.days_ahead; offset += 1) {
    const day = new Date(start + offset * 86_400_000);
    if (rules.weekdays.includes((day.getUTCDay() + 6) % 7)) days.push(day.toISOString().slice(0, 10));
  }
  return days;
}

export const plusMinutes = (iso, minutes) => new Date(Date.parse(iso) + minutes * 60_000).toISOString();
