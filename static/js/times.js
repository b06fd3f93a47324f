// Times that read naturally: "4 min ago" that keeps itself current, the reader's own
// local date and time on hover or focus, and the machine-readable <time datetime>
// (rendered by the server in UTC) underneath, untouched.

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const absoluteFormat = new Intl.DateTimeFormat(undefined, {
  weekday: "short", day: "numeric", month: "short", year: "numeric",
  hour: "2-digit", minute: "2-digit", timeZoneName: "short",
});
const clockFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dateFormat = new Intl.DateTimeFormat(undefined, {
  day: "numeric", month: "short", year: "numeric",
});
const dayFormat = new Intl.DateTimeFormat(undefined, {
  day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
});

export function relative(date, now = Date.now()) {
  const ago = now - date.getTime();
  if (ago < MINUTE) return "just now";
  if (ago < HOUR) return `${Math.floor(ago / MINUTE)} min ago`;
  if (ago < 3 * HOUR) {
    const minutes = Math.floor((ago % HOUR) / MINUTE);
    return `${Math.floor(ago / HOUR)} h ${minutes} min ago`;
  }
  if (ago < DAY) return `${Math.floor(ago / HOUR)} hours ago`;
  return dayFormat.format(date);
}

export function absolute(date) {
  return absoluteFormat.format(date);
}

function render(time, now) {
  const date = new Date(time.dateTime);
  if (Number.isNaN(date.getTime())) return;
  const full = absolute(date);
  if (time.hasAttribute("data-relative")) {
    time.textContent = relative(date, now);
    time.title = full;
    // Shown by CSS on hover and on keyboard focus of the link around it.
    (time.closest("a") || time).dataset.absolute = full;
  } else if (time.hasAttribute("data-date")) {
    time.textContent = dateFormat.format(date); // a story's date line: "3 Dec 2026"
    time.title = full;
  } else {
    time.textContent = clockFormat.format(date); // "Edited 14:05", in local time
    time.title = full;
  }
}

export function renderTimes(scope = document) {
  const now = Date.now();
  for (const time of scope.querySelectorAll("time[datetime]")) render(time, now);
}

// Keeps every time on the page current; aligned to the minute so all change together.
export function keepTimesCurrent(scope = document) {
  renderTimes(scope);
  const tick = () => {
    renderTimes(scope);
    setTimeout(tick, MINUTE - (Date.now() % MINUTE) + 50);
  };
  setTimeout(tick, MINUTE - (Date.now() % MINUTE) + 50);
}
