// The reader's pages: the live story (timeline, "N new updates", key events box), and
// on every page that shows updates (permalink, author) times and share buttons.
import { fragment, startLiveTimeline } from "./live.js";
import { keepTimesCurrent, renderTimes } from "./times.js";
import { enableShareButtons, handleShareClicks } from "./share.js";
import { enhanceEmbeds } from "./embeds.js";

const HEADLINE_LIMIT = 110; // as the server's key events list (liveblog/seo.py)
const reduceMotion = window.matchMedia("(prefers-reduced-motion: reduce)");

const announcer = document.querySelector("[data-announcer]");
function announce(text) {
  if (!announcer) return;
  // Cleared first, so the same words said twice are still announced twice.
  announcer.textContent = "";
  setTimeout(() => { announcer.textContent = text; }, 100);
}

function firstWords(text, limit = HEADLINE_LIMIT) {
  const flat = text.split(/\s+/).filter(Boolean).join(" ");
  if (flat.length <= limit) return flat;
  const cut = flat.slice(0, limit - 1);
  return `${cut.includes(" ") ? cut.slice(0, cut.lastIndexOf(" ")) : cut}…`;
}

function headlineOf(data) {
  if (data.headline) return firstWords(data.headline);
  const body = fragment(data.html)?.querySelector(".update__body");
  return firstWords(body ? body.textContent : "");
}

function bringIntoView(element) {
  element.setAttribute("tabindex", "-1");
  element.scrollIntoView({ behavior: reduceMotion.matches ? "auto" : "smooth", block: "start" });
  element.focus({ preventScroll: true });
}

// New updates never push what someone is reading down the page: while the top of the
// timeline is scrolled out of view they wait, hidden, and a button (and the tab title)
// says how many; the button or scrolling back up shows them.
function holdBackWhileReading(root, timeline) {
  const pending = timeline.querySelector("[data-pending]");
  const button = root.querySelector("[data-new-updates]");
  const baseTitle = document.title;
  const reading = () => timeline.getBoundingClientRect().top < 0;
  const waiting = () => pending.querySelectorAll("article[data-update-id]").length;

  function refresh() {
    const count = waiting();
    if (!count) pending.replaceChildren(); // only emptied shells of deleted updates left
    button.hidden = count === 0;
    button.textContent = `↑ ${count} new ${count === 1 ? "update" : "updates"}`;
    document.title = count ? `(${count}) ${baseTitle}` : baseTitle;
  }

  function reveal({ focus }) {
    const nodes = [...pending.children];
    if (!nodes.length) return;
    pending.after(...nodes);
    refresh();
    if (focus) bringIntoView(nodes[0]);
  }

  button.addEventListener("click", () => reveal({ focus: true }));
  window.addEventListener("scroll", () => {
    if (!button.hidden && !reading()) reveal({ focus: false });
  }, { passive: true });

  return {
    pending,
    reveal,
    refresh,
    insert(node, data) {
      if (root.dataset.order === "oldest") {
        timeline.append(node); // below the reader: nothing moves
        announce(`New update at the end: ${headlineOf(data)}`);
      } else if (reading()) {
        pending.prepend(node);
        refresh();
        const count = waiting();
        announce(`${count} new ${count === 1 ? "update" : "updates"}. Use the button at the top of the updates to show them.`);
      } else {
        pending.after(node);
        announce(`New update: ${headlineOf(data)}`);
      }
    },
  };
}

// The key events box follows the timeline: posted, corrected, unmarked, deleted.
function keyEventsBox(root, onOpen) {
  const box = root.querySelector("[data-key-events]");
  const list = root.querySelector("[data-key-events-list]");
  if (!box || !list) return () => {};
  const count = box.querySelector("[data-key-events-count]");
  const fold = box.querySelector("[data-key-events-fold]");
  // Beside the timeline (wide screens) the box is always open: the stylesheet shows its
  // list where browsers allow, and this opens it where they do not.
  const wide = window.matchMedia("(min-width: 64rem)");
  const openWhenWide = () => { if (fold && wide.matches) fold.open = true; };
  wide.addEventListener("change", openWhenWide);
  openWhenWide();
  fold?.querySelector("summary")?.addEventListener("click", (event) => {
    if (wide.matches) event.preventDefault();
  });

  list.addEventListener("click", (event) => {
    const link = event.target.closest("a");
    const id = link?.closest("[data-key-event]")?.dataset.keyEvent;
    const target = id && document.getElementById(`update-${id}`);
    if (!target) return; // not on this page: the link opens the update's own page
    event.preventDefault();
    onOpen(target);
    bringIntoView(target);
    history.replaceState(null, "", `#update-${id}`);
  });

  function entry(data) {
    const item = document.createElement("li");
    item.dataset.keyEvent = data.id;
    const link = document.createElement("a");
    // The update's own page: the permalink the server rendered into the update.
    link.href = fragment(data.html)?.querySelector(".update__time")?.getAttribute("href") || "";
    const time = document.createElement("time");
    time.dateTime = new Date(data.created_at).toISOString(); // milliseconds, as HTML allows
    time.setAttribute("data-relative", "");
    item.append(link, " ", time);
    // Newest first, like the server's list.
    const later = [...list.children].find((other) => Number(other.dataset.keyEvent) < data.id);
    list.insertBefore(item, later || null);
    return item;
  }

  return (kind, data) => {
    if (!["update", "edit", "delete"].includes(kind)) return;
    const existing = list.querySelector(`[data-key-event="${data.id}"]`);
    if (kind === "delete" || !data.key_event) existing?.remove();
    else (existing || entry(data)).querySelector("a").textContent = headlineOf(data);
    box.hidden = list.children.length === 0;
    if (count) count.textContent = String(list.children.length);
  };
}

// The byline and date line ("By A and B | 3 Dec 2026 | Weather, Coast", as
// templates/_story_byline.html draws it) from a story event's `authors` and `categories`.
// Names are the editors' text: set as text, never as markup.
function bylineLine(root) {
  const line = root.querySelector("[data-story-byline]");
  const date = line?.querySelector("[data-date]");
  const element = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const separator = () => {
    const sep = element("span", "story-byline__sep", "|");
    sep.setAttribute("aria-hidden", "true");
    return sep;
  };
  const link = (href, text) => {
    const a = element("a", "", text);
    a.href = href;
    return a;
  };
  // The part before the date (its names, then a separator) or after it.
  const replacePart = (className, nodes, before) => {
    const old = line.querySelector(`.${className}`);
    if (old) {
      const sep = before ? old.nextElementSibling : old.previousElementSibling;
      if (sep?.classList.contains("story-byline__sep")) sep.remove();
      old.remove();
    }
    if (!nodes.length) return;
    const part = element("span", className);
    part.append(...nodes);
    if (before) date.before(part, " ", separator(), " ");
    else date.after(" ", separator(), " ", part);
  };
  return (data) => {
    if (!line || !date) return;
    if (Array.isArray(data.authors)) {
      const names = [];
      data.authors.forEach((author, i) => {
        if (i > 0) names.push(i === data.authors.length - 1 ? " and " : ", ");
        if (author.username) {
          const a = link(`/authors/${encodeURIComponent(author.username)}`, author.name);
          a.rel = "author";
          names.push(a);
        } else {
          names.push(element("span", "", author.name));
        }
      });
      replacePart("story-byline__authors", names.length ? ["By ", ...names] : [], true);
    }
    if (Array.isArray(data.categories)) {
      const links = [];
      data.categories.forEach((category, i) => {
        if (i > 0) links.push(", ");
        links.push(link(`/categories/${encodeURIComponent(category.slug)}`, category.name));
      });
      replacePart("story-byline__sections", links, false);
    }
  };
}

// The story as an article: its lead and byline follow the editors' changes, and an
// announced story ("Coverage starts at ...") turns live when its first update arrives.
function articleParts(root) {
  const lead = root.querySelector("[data-lead]");
  const leadBody = root.querySelector("[data-lead-body]");
  const prelive = root.querySelector("[data-prelive]");
  const status = root.querySelector("[data-story-status]");
  const byline = bylineLine(root);
  return (kind, data) => {
    if (kind === "story" && lead && leadBody && typeof data.lead_html === "string") {
      // The server's sanitized HTML (liveblog/render.py), as an update's.
      const template = document.createElement("template");
      template.innerHTML = data.lead_html;
      leadBody.replaceChildren(template.content);
      lead.hidden = !data.lead_html;
    }
    if (kind === "story") byline(data);
    if (!prelive || prelive.hidden || !status) return;
    if (kind === "update") {
      prelive.hidden = true;
      if (root.dataset.status === "live") status.textContent = "Live";
    } else if (kind === "story" && data.story?.status === "live") {
      status.textContent = "Coming up";
    }
  };
}

function startStoryPage(root) {
  const timeline = root.querySelector("[data-timeline]");
  const held = holdBackWhileReading(root, timeline);
  const keyEvents = keyEventsBox(root, (target) => {
    if (held.pending.contains(target)) held.reveal({ focus: false });
  });
  const article = articleParts(root);
  window.liveblogTimeline = startLiveTimeline(root, {
    insert: held.insert,
    onApplied(kind, data) {
      keyEvents(kind, data);
      article(kind, data);
      if (kind === "delete") held.refresh();
      renderTimes(root);
      enableShareButtons(root);
      // New, edited and pinned updates arrive as new elements, and so may the lead.
      enhanceEmbeds(root);
    },
  });
}

const root = document.querySelector("[data-live-story]");
if (root) startStoryPage(root);
keepTimesCurrent(document);
enableShareButtons(document);
enhanceEmbeds(document);
handleShareClicks(document, announce);
