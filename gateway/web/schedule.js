// The schedule editor's evaluator: when a set of weekly windows is open, on the home's wall
// clock in its IANA time zone (docs/visitors.md). It mirrors the gateway's own evaluator
// (gateway/trust/schedule.py, WeeklyWindow.contains and allows) minute for minute, DST
// changes included: local times skipped by spring-forward are never reached, and the hour
// repeated at fall-back is inside a window both times. tests/browser/test_visitors.py checks
// the two against each other across the DST weeks of Europe/London and America/New_York.

const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const MINUTE = 60_000;
const QUARTER = 15 * MINUTE;

function minutes(text) {
  return text === "24:00" ? 1440 : Number(text.slice(0, 2)) * 60 + Number(text.slice(3, 5));
}

// WeeklyWindow.contains: [start, end) on the days named; an end before the start wraps.
export function contains(window, weekday, minute) {
  const days = new Set(window.days.map((d) => DAYS.indexOf(d)));
  const start = minutes(window.start);
  const end = minutes(window.end);
  if (end > start) return days.has(weekday) && start <= minute && minute < end;
  if (days.has(weekday) && minute >= start) return true;
  return days.has((weekday + 6) % 7) && minute < end;
}

// The zone's offset from UTC (ms) at an instant, from the platform's time zone database.
function offsetAt(formatter, instant) {
  const parts = Object.fromEntries(formatter.formatToParts(new Date(instant)).map((p) => [p.type, p.value]));
  const asUtc = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day),
    Number(parts.hour) % 24, Number(parts.minute), Number(parts.second));
  return asUtc - Math.floor(instant / 1000) * 1000;
}

// Every open interval [start, end) (UTC ms) between fromMs and toMs, minute by minute. Every
// real zone changes its offset on a quarter hour, so the offset is read once a quarter hour.
export function occurrences(windows, zone, fromMs, toMs) {
  const formatter = new Intl.DateTimeFormat("en-US", {
    timeZone: zone, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric",
    hour: "numeric", minute: "numeric", second: "numeric",
  });
  const out = [];
  let open = null;
  let offset = 0;
  const first = Math.floor(fromMs / MINUTE) * MINUTE;
  for (let t = first; t < toMs; t += MINUTE) {
    if (t === first || t % QUARTER === 0) offset = offsetAt(formatter, t);
    const local = new Date(t + offset);
    const weekday = (local.getUTCDay() + 6) % 7;
    const minute = local.getUTCHours() * 60 + local.getUTCMinutes();
    const inside = windows.some((w) => contains(w, weekday, minute));
    if (inside && open === null) open = t;
    if (!inside && open !== null) { out.push([open, t]); open = null; }
  }
  if (open !== null) out.push([open, Math.ceil(toMs / MINUTE) * MINUTE]);
  return out;
}

// "Mon 30 Mar, 09:00 to 12:00" in the home's zone, for the editor's preview.
export function describe(interval, zone) {
  const day = new Intl.DateTimeFormat("en-GB", { weekday: "short", day: "numeric", month: "short", timeZone: zone });
  const clock = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: zone });
  const [a, b] = interval;
  return `${day.format(new Date(a))}, ${clock.format(new Date(a))} to ${clock.format(new Date(b))}`;
}
