// The story desk: the timeline is fed by the same stream readers get; forms post with
// fetch (no reload) and fall back to plain POST + redirect without JavaScript.
import { startLiveTimeline } from "./live.js";
import { enhanceEmbeds } from "./embeds.js";

const root = document.querySelector("[data-desk]");
const controlsTemplate = document.getElementById("update-controls");

function controlsFor(id, pinned) {
  const controls = controlsTemplate.content.firstElementChild.cloneNode(true);
  for (const el of controls.querySelectorAll("[href], [action]")) {
    for (const attr of ["href", "action"]) {
      const value = el.getAttribute(attr);
      // The template's addresses are the server's, for update 0: this one's id goes in.
      if (value) el.setAttribute(attr, value.replace("/updates/0/", `/updates/${id}/`));
    }
  }
  setPinControl(controls, pinned);
  return controls;
}

function setPinControl(container, pinned) {
  const value = container.querySelector("[data-pin-value]");
  const label = container.querySelector("[data-pin-label]");
  if (value) value.value = pinned ? "off" : "on";
  if (label) label.textContent = pinned ? "Unpin" : "Pin";
}

async function send(form, data = new FormData(form)) {
  const response = await fetch(form.action, {
    method: "POST",
    body: data,
    headers: { Accept: "application/json" },
    credentials: "same-origin",
  });
  let body = {};
  try { body = await response.json(); } catch { /* an HTML error page */ }
  if (!response.ok) throw new Error(body.error || `The server answered ${response.status}.`);
  return body;
}

if (root) {
  window.liveblogTimeline = startLiveTimeline(root, {
    decorate(article, data) {
      const wrapper = document.createElement("div");
      wrapper.className = "desk-update";
      wrapper.dataset.deskUpdate = data.id;
      wrapper.append(article, controlsFor(data.id, data.pinned));
      return wrapper;
    },
    onStory(data) {
      if (!data.change.includes("pin")) return;
      for (const wrapper of root.querySelectorAll("[data-desk-update]")) {
        setPinControl(wrapper, String(data.pinned_id) === wrapper.dataset.deskUpdate);
      }
    },
    // Embeds wait for a click here too; new and edited updates are new elements.
    onApplied() { enhanceEmbeds(root); },
  });
  enhanceEmbeds(root);

  const compose = root.querySelector("[data-compose]");
  const composeError = root.querySelector("[data-compose-error]");
  compose?.addEventListener("submit", async (event) => {
    // Preview answers with a page (the desk with the preview): the browser goes there.
    if (event.submitter?.value === "preview") return;
    event.preventDefault();
    // The button pressed is part of the form ("Save as draft", "Schedule"): read it
    // before the buttons are disabled (a disabled button sends nothing).
    const body = new FormData(compose, event.submitter);
    const buttons = compose.querySelectorAll("button[type=submit]");
    for (const button of buttons) button.disabled = true;
    composeError.hidden = true;
    try {
      await send(compose, body);
      // A published update arrives over the stream, like everyone else's; a draft or a
      // schedule shows in the desk's own sections (desk-queue.js), fetched again now.
      compose.reset();
      compose.querySelector("textarea")?.focus();
      document.dispatchEvent(new CustomEvent("liveblog:desk-changed", { detail: { topic: "compose" } }));
    } catch (error) {
      // Keep what the editor typed; say what went wrong.
      composeError.textContent = error.message;
      composeError.hidden = false;
    } finally {
      for (const button of buttons) button.disabled = false;
    }
  });

  root.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target.matches("[data-submit-on-ctrl-enter]")) {
      event.preventDefault();
      event.target.form.requestSubmit();
    }
  });

  root.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!form.matches("[data-desk-action]")) return;
    event.preventDefault();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    try {
      await send(form);
    } catch (error) {
      window.alert(error.message);
    }
  });
}
