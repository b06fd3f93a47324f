// The newsroom sections of a story's desk (templates/desk/_queue.html), kept current.
// When the story's queue, drafts or schedule change, desk-channel.js (and desk.js,
// after a post of its own) dispatch "liveblog:desk-changed" on document: the sections
// are fetched again as one fragment (GET desk_queue) and swapped in, keeping what is
// being typed, which parts are open, and where the focus is. The tab title counts the
// submissions waiting for an editor: "(2) Desk: Storm".
// Schedule forms hold the browser's wall-clock time: their tz_offset field gets the
// browser's offset from UTC for that time when sent (without this script the server
// reads the time as UTC, as the form says).

const baseTitle = document.title;

function queueRoot() {
  return document.querySelector("[data-desk-queue]");
}

function showWaiting(root) {
  const waiting = Number(root?.dataset.waiting || 0);
  document.title = waiting > 0 ? `(${waiting}) ${baseTitle}` : baseTitle;
}

// --- times -------------------------------------------------------------------------

function offsetName(minutes) {
  const sign = minutes < 0 ? "-" : "+";
  const abs = Math.abs(minutes);
  const hours = String(Math.floor(abs / 60)).padStart(2, "0");
  return `UTC${sign}${hours}:${String(abs % 60).padStart(2, "0")}`;
}

function localInputValue(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

// Schedule inputs in this browser's time: a schedule's current time (given in UTC)
// shown as local time, and the labels saying which zone that is.
function localiseTimes(scope) {
  const here = -new Date().getTimezoneOffset();
  for (const label of scope.querySelectorAll("[data-tz-label]")) {
    label.textContent = `(your time, ${offsetName(here)})`;
  }
  for (const input of scope.querySelectorAll("input[data-utc]")) {
    const date = new Date(input.dataset.utc);
    if (!Number.isNaN(date.getTime())) input.value = localInputValue(date);
    input.removeAttribute("data-utc");
  }
}

// Before any form is sent (desk.js's compose included: this listener runs first), the
// offset of the chosen local time (summer or winter time, for that very day). An offset
// field names its time input (data-tz-offset="starts_at"); unnamed, it is publish_at's.
document.addEventListener("submit", (event) => {
  const form = event.target;
  for (const offsetField of form.querySelectorAll?.("[data-tz-offset]") || []) {
    const name = offsetField.dataset.tzOffset || "publish_at";
    const input = form.querySelector(`input[name=${name}]`);
    if (!input) continue;
    const chosen = input.value ? new Date(input.value) : new Date();
    offsetField.value = Number.isNaN(chosen.getTime()) ? "" : String(-chosen.getTimezoneOffset());
  }
}, true);

// --- the swap ----------------------------------------------------------------------

// What a person is in the middle of, by a key that survives the swap.
function fieldKey(el) {
  const form = el.form;
  if (!form || el.type === "hidden") return null;
  const button = el.matches("button");
  if (!el.name && !button) return null;
  return `${form.getAttribute("action")}|${el.name}|${button ? el.textContent.trim() : ""}`;
}

function remember(root) {
  const values = new Map();
  for (const el of root.querySelectorAll("textarea, input")) {
    const key = fieldKey(el);
    // Only what the person changed: a field they did not touch takes the server's new
    // value (another editor's new schedule time, say).
    if (key && el.value !== el.defaultValue) values.set(key, el.value);
  }
  const open = new Set([...root.querySelectorAll("details[data-key][open]")].map((d) => d.dataset.key));
  const active = document.activeElement;
  let focus = null;
  if (active && root.contains(active)) {
    focus = {
      key: fieldKey(active),
      id: active.id,
      href: active.getAttribute("href"),
      summary: active.matches("summary") ? active.parentElement.dataset.key : null,
      section: active.closest("[aria-labelledby]")?.getAttribute("aria-labelledby"),
      start: active.selectionStart,
      end: active.selectionEnd,
    };
  }
  return { values, open, focus };
}

function restore(root, saved) {
  for (const el of root.querySelectorAll("textarea, input")) {
    const key = fieldKey(el);
    if (key && saved.values.has(key)) el.value = saved.values.get(key);
  }
  for (const details of root.querySelectorAll("details[data-key]")) {
    if (saved.open.has(details.dataset.key)) details.open = true;
  }
  const focus = saved.focus;
  if (!focus) return;
  let target = null;
  for (const el of root.querySelectorAll("textarea, input, button, a, summary")) {
    if ((focus.key && fieldKey(el) === focus.key) ||
        (focus.href && el.getAttribute("href") === focus.href) ||
        (focus.summary && el.matches("summary") && el.parentElement.dataset.key === focus.summary)) {
      target = el;
      break;
    }
  }
  // Its update left the list (published, say): its section's heading keeps the place.
  if (!target && focus.section) target = root.querySelector(`[id="${focus.section}"]`);
  if (!target) return;
  if (target.matches("h2")) target.tabIndex = -1;
  target.focus({ preventScroll: true });
  if (typeof focus.start === "number" && "setSelectionRange" in target) {
    try { target.setSelectionRange(focus.start, focus.end); } catch { /* not a text field */ }
  }
}

let pending = null;
let again = false;

async function refresh() {
  const root = queueRoot();
  if (!root) return;
  if (pending) { again = true; return; }  // one fetch at a time; one more after it
  pending = (async () => {
    try {
      const response = await fetch(root.dataset.deskQueue, {
        credentials: "same-origin",
        headers: { Accept: "text/html" },
      });
      if (!response.ok) return;
      const html = await response.text();
      const fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-desk-queue]");
      if (!fresh) return;
      const current = queueRoot();
      const saved = remember(current);
      current.replaceWith(fresh);
      localiseTimes(fresh);
      restore(fresh, saved);
      showWaiting(fresh);
      // The desk channel marks who is editing what in the new sections too.
      document.dispatchEvent(new CustomEvent("liveblog:desk-queue-swapped"));
    } catch { /* offline for a moment: the next change fetches again */ }
  })();
  await pending;
  pending = null;
  if (again) { again = false; await refresh(); }
}

document.addEventListener("liveblog:desk-changed", () => { refresh(); });

const initial = queueRoot();
localiseTimes(document);
showWaiting(initial);
