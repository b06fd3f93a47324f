// The desk channel (staff only): who is on this story's desk, who is editing which
// update, and "changed" signals, which other desk scripts hear as the DOM event
// "liveblog:desk-changed" ({detail: {topic}}). Readers never get any of it.
const panel = document.querySelector("[data-desk-channel]");

function othersIn(people, me) {
  return people.filter((person) => person.username !== me);
}

function namesOf(people) {
  const names = new Map();
  for (const person of people) names.set(person.username, person.name);
  return [...names.values()];
}

function joined(names) {
  return names.length < 2 ? names.join("") : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
}

// The story desk: "Priya is editing this" beside each update someone else has open.
function markUpdates(others) {
  for (const mark of document.querySelectorAll("[data-desk-editing-mark]")) mark.remove();
  const editors = new Map();
  for (const person of others) {
    if (person.editing === null) continue;
    const names = editors.get(String(person.editing)) || [];
    if (!names.includes(person.name)) names.push(person.name);
    editors.set(String(person.editing), names);
  }
  for (const [id, names] of editors) {
    // The update's entry in the timeline, or in the queue, schedule or drafts.
    const selector = `[data-desk-update="${CSS.escape(id)}"] .desk-controls`;
    for (const controls of document.querySelectorAll(selector)) {
      const mark = document.createElement("span");
      mark.className = "desk-editing";
      mark.dataset.deskEditingMark = id;
      mark.textContent = `${joined(names)} ${names.length > 1 ? "are" : "is"} editing this`;
      controls.append(mark);
    }
  }
}

// The edit page: "Priya is editing this too" when someone else has the same update open.
function markSameUpdate(others, editing) {
  const notice = document.querySelector("[data-desk-also-editing]");
  if (!notice) return;
  const names = namesOf(others.filter((person) => String(person.editing) === editing));
  notice.textContent = names.length
    ? `${joined(names)} ${names.length > 1 ? "are" : "is"} editing this too. Whoever saves second will be asked to merge.`
    : "";
  notice.hidden = names.length === 0;
}

if (panel) {
  const me = panel.dataset.deskMe;
  const editing = panel.dataset.deskEditing || null;
  const list = panel.querySelector("[data-desk-people]");
  const url = new URL(panel.dataset.deskChannel, window.location.href);
  if (editing) url.searchParams.set("editing", editing);
  let others = [];

  const show = () => {
    const names = namesOf(others);
    list.textContent = names.length ? names.join(", ") : "only you";
    panel.hidden = false;
    if (editing) markSameUpdate(others, editing);
    else markUpdates(others);
  };

  const source = new EventSource(url);
  // Whatever changed between this page's rendering and the channel's opening (or while
  // it was down, before a reconnect) was said to nobody: look again at every opening.
  source.addEventListener("open", () => {
    document.dispatchEvent(new CustomEvent("liveblog:desk-changed", { detail: { topic: "connected" } }));
  });
  source.addEventListener("presence", (event) => {
    others = othersIn(JSON.parse(event.data), me);
    show();
  });
  source.addEventListener("changed", (event) => {
    const { topic } = JSON.parse(event.data);
    document.dispatchEvent(new CustomEvent("liveblog:desk-changed", { detail: { topic } }));
  });
  // The queue's sections, swapped in anew, get their marks again.
  document.addEventListener("liveblog:desk-queue-swapped", () => { if (!editing) markUpdates(others); });
  // Updates that arrive on the timeline later get their marks too.
  const timeline = document.querySelector("[data-timeline]");
  if (timeline && !editing) {
    new MutationObserver(() => markUpdates(others)).observe(timeline, { childList: true });
  }
}
