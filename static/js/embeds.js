// Rich embeds (a YouTube video, a post from X, Bluesky, Mastodon...): the server puts a
// static card in the update, with a thumbnail it re-hosted, so the page makes no request
// to the provider. Here each card that has something to load gets a consent row; only a
// click (or an earlier "Always load" for that provider) creates the iframe, and that
// iframe points at our own /embed-frame/{key} page, sandboxed, never at the provider.
// Without JavaScript the card stays what the server made it: a link.
// static/widget.js does the same inside its shadow root (it cannot import this module).

const STORE_KEY = "liveblog:embeds:always"; // a JSON array of provider keys
const SIZE_MESSAGE = "liveblog:embed-size"; // sent by static/js/provider-frame.js
// Our /embed-frame/{key}: a path on this site, or an address on the frames' own host
// (LIVEBLOG_EMBED_FRAME_URL, docs/embeds.md).
const FRAME_PATH = /^(?:https?:\/\/[A-Za-z0-9.-]+(?::\d{1,5})?)?\/embed-frame\/[A-Za-z0-9_-]+$/;
const RATIO = /^\s*(\d+(?:\.\d+)?)\s*\/\s*(\d+(?:\.\d+)?)\s*$/;
const DEFAULT_HEIGHT = 400; // a rich post, until its frame says how tall it is
const MIN_HEIGHT = 100;
const MAX_HEIGHT = 3000;
// No allow-same-origin: the frame page runs as an opaque origin, so the provider's
// script can reach neither our cookies nor this page.
const SANDBOX = "allow-scripts allow-popups allow-popups-to-escape-sandbox allow-presentation";
// Only a frame on the frames' own host, which holds nothing of this site's, may have an
// origin of its own (players that need their cookies); the server's policy for that
// frame says the same, and on this site's host it never allows it.
const OWN_ORIGIN = " allow-same-origin";
const ALLOW = "fullscreen; encrypted-media; picture-in-picture; autoplay";

function ownOrigin(frame) {
  if (!/^https?:/.test(frame || "")) return false;
  try {
    return new URL(frame).origin !== location.origin;
  } catch {
    return false;
  }
}

const state = new WeakMap(); // figure -> { provider, name, checkbox, button, note, loaded }
const frames = new Set(); // the iframes we made: only they may resize themselves
let unstored = null; // the list, when storage cannot be written: it lasts for this page

// The remembered providers. Storage may be blocked (privacy modes, sandboxed pages) or
// hold anything at all: both mean "none remembered", never an error.
function remembered() {
  if (unstored) return unstored;
  try {
    const list = JSON.parse(window.localStorage.getItem(STORE_KEY) || "[]");
    return Array.isArray(list) ? list.filter((key) => typeof key === "string") : [];
  } catch {
    return [];
  }
}

function remember(provider, always) {
  const list = remembered().filter((key) => key !== provider);
  if (always) list.push(provider);
  try {
    window.localStorage.setItem(STORE_KEY, JSON.stringify(list));
  } catch {
    unstored = list;
  }
}

function ratioOf(figure) {
  const match = RATIO.exec(figure.dataset.embedRatio || "");
  const [width, height] = match ? [Number(match[1]), Number(match[2])] : [0, 0];
  return width > 0 && height > 0 ? [width, height] : null;
}

function load(figure, { focus }) {
  const embed = state.get(figure);
  if (!embed || embed.loaded) return;
  embed.loaded = true;
  const card = figure.querySelector(":scope > .embed__card");
  const title = card?.querySelector(".embed__title")?.textContent.trim() || card?.textContent.trim() || "Embedded content";
  const iframe = document.createElement("iframe");
  iframe.className = "embed__frame";
  iframe.title = `${title} (${embed.name})`;
  iframe.setAttribute("sandbox", SANDBOX + (ownOrigin(figure.dataset.embedFrame) ? OWN_ORIGIN : ""));
  iframe.setAttribute("allow", ALLOW);
  iframe.setAttribute("referrerpolicy", "no-referrer");
  iframe.setAttribute("loading", "lazy");
  const ratio = ratioOf(figure);
  if (ratio) {
    // A video keeps its shape; a tall one (9/16) is narrowed to fit the screen's height.
    // Scripted style is CSSOM, which the page's style-src 'self' allows.
    iframe.style.aspectRatio = `${ratio[0]} / ${ratio[1]}`;
    iframe.style.maxWidth = `calc(85vh * ${ratio[0]} / ${ratio[1]})`;
  } else {
    iframe.style.height = `${DEFAULT_HEIGHT}px`;
    iframe.dataset.embedResizable = "";
  }
  iframe.src = figure.dataset.embedFrame; // checked against FRAME_PATH in enhance()
  frames.add(iframe);
  // The frame takes the thumbnail's place; the card stays below it as the link out.
  card?.querySelector(".embed__thumb")?.remove();
  if (card) card.before(iframe);
  else figure.prepend(iframe);
  figure.classList.add("embed--loaded");
  // The consent is given: the button and the warning go, "Always load" stays to untick.
  embed.button.remove();
  embed.note.remove();
  if (focus) iframe.focus();
}

// Every enhanced embed of this provider on the page (or in this shadow root) follows the
// remembered choice: ticked, and loaded, once it is remembered.
function follow(scope, provider) {
  const always = remembered().includes(provider);
  for (const figure of scope.querySelectorAll("figure.embed[data-embed-frame]")) {
    const embed = state.get(figure);
    if (!embed || embed.provider !== provider) continue;
    embed.checkbox.checked = always;
    if (always) load(figure, { focus: false });
  }
}

function enhance(figure, always) {
  const frame = figure.dataset.embedFrame || "";
  if (!FRAME_PATH.test(frame)) return; // not the server's markup: stays a link card
  const provider = figure.dataset.embedProvider || "";
  const name = figure.dataset.embedProviderName
    || figure.querySelector(".embed__provider")?.textContent.trim()
    || "the provider";
  const row = document.createElement("div");
  row.className = "embed__consent";
  const button = document.createElement("button");
  button.type = "button";
  button.className = "embed__load";
  button.textContent = `Load content from ${name}`;
  const label = document.createElement("label");
  label.className = "embed__always";
  const checkbox = document.createElement("input");
  checkbox.type = "checkbox";
  checkbox.checked = Boolean(provider) && always.includes(provider);
  label.append(checkbox, ` Always load ${name}`);
  const note = document.createElement("span");
  note.className = "embed__note";
  note.textContent = `${name} may set cookies and track you.`;
  row.append(button, " ", ...(provider ? [label, " "] : []), note);
  (figure.querySelector(":scope > .embed__card") || figure.firstChild)?.after(row);

  const embed = { provider, name, checkbox, button, note, loaded: false };
  state.set(figure, embed);
  button.addEventListener("click", () => {
    load(figure, { focus: true });
    if (provider && checkbox.checked) {
      remember(provider, true);
      follow(figure.getRootNode(), provider);
    }
  });
  checkbox.addEventListener("change", () => {
    // Unticking forgets at once; ticking counts once content is loaded (the click on
    // "Load" is the consent, the box only says whether it lasts).
    if (!checkbox.checked) remember(provider, false);
    else if (embed.loaded) remember(provider, true);
    else return;
    follow(figure.getRootNode(), provider);
  });
  if (checkbox.checked) load(figure, { focus: false });
}

/** Adds the consent row to every embed under `root` that has none yet (new and edited
 * updates arrive as new elements, so calling this again after each is enough). */
export function enhanceEmbeds(root = document) {
  for (const iframe of frames) if (!iframe.isConnected) frames.delete(iframe);
  const figures = [...root.querySelectorAll("figure.embed[data-embed-frame]")].filter((figure) => !state.has(figure));
  if (!figures.length) return;
  const always = remembered();
  for (const figure of figures) enhance(figure, always);
}

// A rich post's frame says how tall its content is; a video keeps its ratio instead.
window.addEventListener("message", (event) => {
  const data = event.data;
  if (!event.source || !data || data.type !== SIZE_MESSAGE || !Number.isFinite(data.height)) return;
  for (const iframe of frames) {
    if (iframe.contentWindow !== event.source) continue;
    if (!("embedResizable" in iframe.dataset)) return;
    const height = Math.min(MAX_HEIGHT, Math.max(MIN_HEIGHT, Math.ceil(data.height)));
    iframe.style.height = `${height}px`;
    return;
  }
});
