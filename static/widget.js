/*! liveblog widget: <live-blog story="SLUG" src="https://HOST" limit="10"></live-blog>
 * A live story on any page. Everything renders inside a shadow root, so the host page's
 * styles do not reach in and ours do not leak out. Update HTML comes from the server's
 * sanitizer and is parsed inert (<template>), filtered again, and only ever inserted
 * into the shadow root. No eval, no inline handlers, no framework, no build step.
 * Docs: docs/embedding.md. */
(() => {
  "use strict";
  if (!window.customElements || customElements.get("live-blog")) return;

  // Where this script came from: the default server when a widget has no src.
  const script = document.currentScript;
  const SCRIPT_BASE = script && script.src ? new URL(script.src).origin : location.origin;
  const KINDS = ["update", "edit", "delete", "story"];
  const SLUG = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
  const MAX_LIMIT = 50;
  // Defence in depth: the server's allow-list never produces these; if one ever came
  // through, it is dropped here rather than trusted.
  const DROP = "script,style,iframe,frame,frameset,object,embed,link,meta,base,form,input,button,textarea,select,svg,math,template,noscript";
  const SCHEMES = ["http:", "https:", "mailto:"];

  const DARK = "--_bg: var(--liveblog-background, #121212); --_text: var(--liveblog-text, #ececec); --_muted: var(--liveblog-muted, #a8a8a8); --_line: var(--liveblog-border, #333); --_accent: var(--liveblog-accent, #7ab8ff); --_live: var(--liveblog-live, #ff6b6b); --_key: var(--liveblog-key, #ffcf70); --_new: var(--liveblog-highlight, #2a2310); color-scheme: dark;";
  const CSS = `
/* flow-root holds the floated box below: a float is out of flow, which is what stops a
   host page's text-decoration from propagating into the widget (inheritance is reset
   by "all: initial"; decorations are not inherited but drawn through, except on floats). */
:host { display: flow-root !important; }
:host([hidden]) { display: none !important; }
[hidden] { display: none !important; }
.lb {
  all: initial; display: block; float: left; width: 100%; box-sizing: border-box;
  --_bg: var(--liveblog-background, #fff); --_text: var(--liveblog-text, #1a1a1a);
  --_muted: var(--liveblog-muted, #595959); --_line: var(--liveblog-border, #ddd);
  --_accent: var(--liveblog-accent, #0b5cad); --_live: var(--liveblog-live, #c40000);
  --_key: var(--liveblog-key, #8a5a00); --_new: var(--liveblog-highlight, #fff6e0);
  background: var(--_bg); color: var(--_text); color-scheme: light;
  font-family: var(--liveblog-font, system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif);
  font-size: var(--liveblog-font-size, 16px); line-height: 1.5; text-align: start;
  direction: ltr; unicode-bidi: isolate;
  border: 1px solid var(--_line); border-radius: var(--liveblog-radius, 6px); padding: .75em 1em;
}
:host([dir="rtl"]) .lb { direction: rtl; }
:host([theme="dark"]) .lb { ${DARK} }
@media (prefers-color-scheme: dark) { :host([theme="auto"]) .lb { ${DARK} } }
.lb * { box-sizing: border-box; }
a { color: var(--_accent); }
a:focus-visible { outline: 2px solid var(--_accent); outline-offset: 2px; }
.head { display: flex; flex-wrap: wrap; align-items: baseline; gap: .25em .6em; }
/* No layout shift: the title wraps beside the badge, whose room is kept while loading. */
.title { flex: 1 1 10em; min-width: 0; font-weight: 700; font-size: 1.15em; line-height: 1.25; color: var(--_text); text-decoration: none; }
.title:hover { text-decoration: underline; }
.badge { font-size: .7em; font-weight: 700; letter-spacing: .06em; text-transform: uppercase; padding: .05em .45em; border: 1px solid currentColor; border-radius: 3px; color: var(--_muted); }
.badge.live { color: var(--_live); }
.badge.pending { visibility: hidden; }
.badge.live::before { content: "\\25CF  "; }
.conn { font-size: .8em; color: var(--_muted); }
.pinned { border: 2px solid var(--_accent); border-radius: 4px; padding: 0 .75em; margin: .75em 0; }
.pinned-label { margin: .4em 0 0; font-size: .7em; font-weight: 700; text-transform: uppercase; letter-spacing: .08em; color: var(--_accent); }
.pinned .update { border-top: 0; }
.update { border-top: 1px solid var(--_line); padding: .75em 0; }
.update--key { border-top: 3px solid var(--_key); }
.update__meta { display: flex; flex-wrap: wrap; gap: .2em .6em; align-items: baseline; font-size: .85em; color: var(--_muted); }
.update__time { font-weight: 700; color: var(--_text); text-decoration: none; }
.update__time:hover { text-decoration: underline; }
.update__edited { font-style: italic; }
.badge--key { font-size: .85em; font-weight: 700; color: var(--_key); }
.update__headline { font-size: 1.1em; line-height: 1.3; margin: .3em 0 .2em; }
.visually-hidden { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
.update__body > :first-child { margin-top: .3em; }
.update__body > :last-child { margin-bottom: 0; }
.update__body p { margin: .5em 0; }
.update__body blockquote { margin: .6em 0; padding: 0 0 0 .9em; border-left: 4px solid var(--_line); }
.update__body pre { overflow-x: auto; }
.update__body table { border-collapse: collapse; }
.update__body th, .update__body td { border: 1px solid var(--_line); padding: .2em .45em; }
img { max-width: 100%; height: auto; }
figure { margin: .6em 0; }
figcaption { font-size: .85em; color: var(--_muted); }
.empty, .note { color: var(--_muted); font-style: italic; margin: .75em 0 0; }
.foot { margin: .75em 0 0; padding-top: .5em; border-top: 1px solid var(--_line); font-size: .85em; }
/* Rich embeds: the server's link card; the consent row and the frame are made here. */
.embed__card { display: flex; gap: .7em; align-items: flex-start; padding: .5em; border: 1px solid var(--_line); border-radius: 4px; color: var(--_text); text-decoration: none; }
.embed__card:hover .embed__title { text-decoration: underline; }
.embed__thumb { flex: 0 0 auto; display: block; width: 8em; max-width: 40%; height: auto; border-radius: 3px; object-fit: cover; }
.embed__text { display: flex; flex-direction: column; gap: .1em; min-width: 0; overflow-wrap: anywhere; }
.embed__title { font-weight: 700; line-height: 1.3; }
.embed__author, .embed__provider { color: var(--_muted); font-size: .85em; }
.embed__consent { display: flex; flex-wrap: wrap; align-items: center; gap: .4em .9em; margin-top: .5em; font-size: .85em; }
.embed__load { font: inherit; font-weight: 700; cursor: pointer; color: var(--_bg); background: var(--_accent); border: 1px solid var(--_accent); border-radius: 4px; padding: .25em .75em; }
.embed__load:focus-visible, .embed__always input:focus-visible { outline: 2px solid var(--_accent); outline-offset: 2px; }
.embed__always { display: inline-flex; gap: .35em; align-items: center; cursor: pointer; }
.embed__note { color: var(--_muted); flex-basis: 100%; }
.embed__frame { display: block; width: 100%; border: 0; margin: 0 auto; }
.embed--loaded .embed__card { margin-top: .4em; padding: .3em .5em; }
.embed--loaded .embed__text { flex-direction: row; flex-wrap: wrap; gap: 0 .6em; align-items: baseline; }
@media (max-width: 30em) { .embed__card { flex-direction: column; } .embed__thumb { width: 100%; max-width: none; } }
@media (prefers-reduced-motion: no-preference) { .is-new { animation: arrive 1.2s ease-out; } }
@keyframes arrive { from { background: var(--_new); } to { background: transparent; } }
`;

  // Sites that enforce Trusted Types allow this policy by name (docs/embedding.md). It
  // passes HTML through unchanged: it is our server's sanitized output, and fragment()
  // filters it again after parsing it inert.
  let policy = null;
  try {
    policy = window.trustedTypes ? trustedTypes.createPolicy("liveblog-widget", { createHTML: (html) => html }) : null;
  } catch {
    policy = null; // the page's policy list does not name us: innerHTML below then fails loudly
  }

  let sheet = null;
  // Returns what must stay in the shadow root when the widget redraws (older browsers).
  function adoptStyles(root) {
    // A constructed stylesheet is shared by every widget on the page and is not an
    // inline <style>, so a host page's strict style-src policy does not block it.
    if ("adoptedStyleSheets" in root && window.CSSStyleSheet && "replaceSync" in CSSStyleSheet.prototype) {
      if (!sheet) { sheet = new CSSStyleSheet(); sheet.replaceSync(CSS); }
      root.adoptedStyleSheets = [sheet];
      return [];
    }
    const style = document.createElement("style");
    style.textContent = CSS;
    return [style];
  }

  function el(tag, className, part, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (part) node.setAttribute("part", part);
    if (text) node.textContent = text;
    return node;
  }

  function absolute(value, base) {
    try {
      const url = new URL(value, base);
      return SCHEMES.includes(url.protocol) ? url.href : null;
    } catch {
      return null;
    }
  }

  // Parse a server fragment without running anything, filter it, make its links work
  // on the host page (absolute against our server, opening a new tab), add ::part hooks.
  function fragment(html, base) {
    const template = document.createElement("template");
    const markup = String(html || "").trim();
    template.innerHTML = policy ? policy.createHTML(markup) : markup;
    const content = template.content;
    for (const node of content.querySelectorAll(DROP)) node.remove();
    for (const node of content.querySelectorAll("*")) {
      for (const { name, value } of [...node.attributes]) {
        const lower = name.toLowerCase();
        if (lower.startsWith("on") || lower === "style" || lower === "id") {
          node.removeAttribute(name);
        } else if (lower === "href" || lower === "src") {
          const url = absolute(value, base);
          if (url) node.setAttribute(name, url);
          else node.removeAttribute(name);
        } else if (lower === "srcset") {
          const candidates = value.split(",").map((item) => item.trim().split(/\s+/));
          const urls = candidates.map(([url]) => absolute(url, base));
          if (urls.every(Boolean)) {
            node.setAttribute(name, candidates.map(([, size], i) => (size ? `${urls[i]} ${size}` : urls[i])).join(", "));
          } else node.removeAttribute(name);
        }
      }
      if (node.localName === "a") {
        node.target = "_blank";
        node.relList.add("noopener");
      }
    }
    const article = content.firstElementChild;
    if (!article) return null;
    article.setAttribute("part", article.classList.contains("update--key") ? "update key-event" : "update");
    const parts = { ".update__meta": "meta", ".update__time": "time", ".update__headline": "headline", ".update__body": "body" };
    for (const [selector, part] of Object.entries(parts)) {
      article.querySelector(selector)?.setAttribute("part", part);
    }
    return article;
  }

  // Rich embeds, as static/js/embeds.js does on our own pages: the server sends a link
  // card with data-embed-* attributes; nothing loads from the provider until the reader
  // clicks (or chose "Always load" for it before). The button, the checkbox and the
  // iframe are made here from those attributes, never taken from server HTML (DROP).
  const EMBEDS_KEY = "liveblog:embeds:always"; // a JSON array of provider keys
  // A path on our server, or an address on the frames' own host (docs/embeds.md).
  const FRAME_PATH = /^(?:https?:\/\/[A-Za-z0-9.-]+(?::\d{1,5})?)?\/embed-frame\/[A-Za-z0-9_-]+$/;
  const RATIO = /^\s*(\d+(?:\.\d+)?)\s*\/\s*(\d+(?:\.\d+)?)\s*$/;
  // No allow-same-origin: the frame page runs as an opaque origin.
  const SANDBOX = "allow-scripts allow-popups allow-popups-to-escape-sandbox allow-presentation";
  const embeds = new WeakMap(); // figure -> its state
  const frames = new Set(); // the iframes we made: only they may resize themselves
  let unstored = null; // the list, when storage cannot be written: it lasts for this page

  // Storage may be blocked or hold anything: both mean "none remembered".
  function remembered() {
    if (unstored) return unstored;
    try {
      const list = JSON.parse(localStorage.getItem(EMBEDS_KEY) || "[]");
      return Array.isArray(list) ? list.filter((key) => typeof key === "string") : [];
    } catch {
      return [];
    }
  }

  function remember(provider, always) {
    const list = remembered().filter((key) => key !== provider);
    if (always) list.push(provider);
    try { localStorage.setItem(EMBEDS_KEY, JSON.stringify(list)); } catch { unstored = list; }
  }

  function loadEmbed(figure, focus) {
    const embed = embeds.get(figure);
    if (!embed || embed.loaded) return;
    embed.loaded = true;
    const card = figure.querySelector(":scope > .embed__card");
    const title = (card && card.querySelector(".embed__title")) || card;
    const frame = document.createElement("iframe");
    frame.className = "embed__frame";
    frame.title = `${(title && title.textContent.trim()) || "Embedded content"} (${embed.name})`;
    // An origin of its own only on the frames' own host, never on our server's.
    frame.setAttribute("sandbox", SANDBOX + (embed.ownOrigin ? " allow-same-origin" : ""));
    frame.setAttribute("allow", "fullscreen; encrypted-media; picture-in-picture; autoplay");
    frame.setAttribute("referrerpolicy", "no-referrer");
    frame.setAttribute("loading", "lazy");
    const ratio = RATIO.exec(figure.getAttribute("data-embed-ratio") || "");
    if (ratio && +ratio[1] > 0 && +ratio[2] > 0) {
      frame.style.aspectRatio = `${ratio[1]} / ${ratio[2]}`;
      frame.style.maxWidth = `calc(85vh * ${ratio[1]} / ${ratio[2]})`;
    } else {
      frame.style.height = "400px"; // until the frame says how tall it is
      embed.resizable = true;
    }
    frame.src = embed.src;
    frames.add(frame);
    const thumb = card && card.querySelector(".embed__thumb");
    if (thumb) thumb.remove();
    if (card) card.before(frame);
    else figure.prepend(frame);
    figure.classList.add("embed--loaded");
    embed.button.remove();
    embed.note.remove();
    if (focus) frame.focus();
  }

  // Every embed of this provider in the shadow root follows the remembered choice.
  function followChoice(scope, provider) {
    const always = remembered().includes(provider);
    for (const figure of scope.querySelectorAll("figure.embed[data-embed-frame]")) {
      const embed = embeds.get(figure);
      if (!embed || embed.provider !== provider) continue;
      embed.checkbox.checked = always;
      if (always) loadEmbed(figure, false);
    }
  }

  // Adds the consent row to every embed under scope that has none; frame paths are
  // our server's (base), and nothing else.
  function enhanceEmbeds(scope, base) {
    for (const frame of frames) if (!frame.isConnected) frames.delete(frame);
    const always = remembered();
    for (const figure of scope.querySelectorAll("figure.embed[data-embed-frame]")) {
      if (embeds.has(figure)) continue;
      const path = figure.getAttribute("data-embed-frame");
      if (!FRAME_PATH.test(path)) continue;
      const src = absolute(path, base);
      if (!src) continue;
      const origin = new URL(src).origin;
      const ownOrigin = /^https?:/.test(path) && origin !== new URL(base).origin && origin !== location.origin;
      const provider = figure.getAttribute("data-embed-provider") || "";
      const named = figure.querySelector(".embed__provider");
      const name = figure.getAttribute("data-embed-provider-name") || (named && named.textContent.trim()) || "the provider";
      const button = el("button", "embed__load", null, `Load content from ${name}`);
      button.type = "button";
      const label = el("label", "embed__always");
      const checkbox = el("input");
      checkbox.type = "checkbox";
      checkbox.checked = Boolean(provider) && always.includes(provider);
      label.append(checkbox, ` Always load ${name}`);
      const note = el("span", "embed__note", null, `${name} may set cookies and track you.`);
      const row = el("div", "embed__consent");
      row.append(button, " ", ...(provider ? [label, " "] : []), note);
      const card = figure.querySelector(":scope > .embed__card");
      if (card) card.after(row);
      else figure.prepend(row);
      const embed = { provider, name, src, ownOrigin, button, checkbox, note, loaded: false, resizable: false };
      embeds.set(figure, embed);
      button.addEventListener("click", () => {
        loadEmbed(figure, true);
        if (provider && checkbox.checked) {
          remember(provider, true);
          followChoice(scope, provider);
        }
      });
      checkbox.addEventListener("change", () => {
        // Unticking forgets; ticking counts once loaded (the click is the consent).
        if (!checkbox.checked) remember(provider, false);
        else if (embed.loaded) remember(provider, true);
        else return;
        followChoice(scope, provider);
      });
      if (checkbox.checked) loadEmbed(figure, false);
    }
  }

  // A rich post's frame (static/js/provider-frame.js) reports its content's height.
  window.addEventListener("message", (event) => {
    const data = event.data;
    if (!event.source || !data || data.type !== "liveblog:embed-size" || !Number.isFinite(data.height)) return;
    for (const frame of frames) {
      if (frame.contentWindow !== event.source) continue;
      const figure = frame.closest("figure");
      const embed = figure && embeds.get(figure);
      if (embed && embed.resizable) frame.style.height = `${Math.min(3000, Math.max(100, Math.ceil(data.height)))}px`;
      return;
    }
  });

  class LiveBlog extends HTMLElement {
    static get observedAttributes() { return ["story", "src", "limit", "order"]; }

    constructor() {
      super();
      this._shadow = this.attachShadow({ mode: "open" });
      this._keep = adoptStyles(this._shadow);
      this._generation = 0;
      this._source = null;
      this._timer = 0;
      this._seq = 0;
      this._scheduled = false;
    }

    /** The number of the last story event this widget applied. */
    get lastSeq() { return this._seq; }

    connectedCallback() { this._schedule(); }
    disconnectedCallback() { this._stop(); }
    attributeChangedCallback(name, before, after) { if (before !== after) this._schedule(); }

    // Attributes arrive one callback at a time (and before connectedCallback on upgrade):
    // start once, after all of them.
    _schedule() {
      if (this._scheduled) return;
      this._scheduled = true;
      queueMicrotask(() => {
        this._scheduled = false;
        if (this.isConnected) this._start();
      });
    }

    _stop() {
      this._generation += 1;
      this._source?.close();
      this._source = null;
      clearTimeout(this._timer);
    }

    _config() {
      const slug = (this.getAttribute("story") || "").trim();
      const src = absolute(this.getAttribute("src") || SCRIPT_BASE, location.href);
      const limit = Math.min(MAX_LIMIT, Math.max(1, parseInt(this.getAttribute("limit"), 10) || 10));
      const order = this.getAttribute("order") === "oldest" ? "oldest" : "newest";
      if (!SLUG.test(slug) || !src || !src.startsWith("http")) return null;
      // src may carry a path prefix (a site served under /live/): keep it, minus the slash.
      return { slug, base: src.replace(/\/+$/, ""), limit, order };
    }

    _start() {
      this._stop();
      const config = this._config();
      const box = el("div", "lb", "container");
      box.setAttribute("role", "region");
      box.setAttribute("aria-label", "Live updates");
      this._box = box;
      this._shadow.replaceChildren(...this._keep, box);
      if (!config) {
        this._state("unavailable");
        box.append(el("p", "note", "notice", "This live blog is not set up right (story or src)."));
        return;
      }
      this._cfg = config;
      this._state("loading");
      this._seq = 0;
      this._retry = 1000;
      const head = el("div", "head", "header");
      // Room for the badge while loading (most stories are live).
      this._badge = el("span", "badge live pending", "status", "Live");
      this._title = el("a", "title", "title", "Loading live updates…");
      this._title.target = "_blank";
      this._title.rel = "noopener";
      this._conn = el("span", "conn", "connection");
      this._conn.setAttribute("role", "status");
      head.append(this._badge, this._title, this._conn);
      this._pinned = el("section", "pinned", "pinned");
      this._pinned.hidden = true;
      this._pinned.setAttribute("aria-label", "Pinned update");
      this._pinnedSlot = el("div");
      this._pinned.append(el("h2", "pinned-label", null, "Pinned"), this._pinnedSlot);
      this._timeline = el("div", "timeline", "timeline");
      this._timeline.setAttribute("aria-live", "polite");
      this._empty = el("p", "empty", "empty", "No updates yet. New ones appear here as they are posted.");
      this._empty.hidden = true;
      // Shown with the updates (it would be pushed down by them).
      const foot = el("p", "foot", "footer");
      foot.hidden = true;
      this._foot = foot;
      this._link = el("a", null, "link", "Open the full live story");
      this._link.target = "_blank";
      this._link.rel = "noopener";
      foot.append(this._link);
      box.append(head, this._pinned, this._timeline, this._empty, foot);
      this._load(this._generation);
    }

    async _load(generation) {
      const { slug, base, limit, order } = this._cfg;
      const url = `${base}/stories/${slug}/updates.json?limit=${limit}&order=${order}`;
      let data = null;
      let status = 0;
      try {
        const response = await fetch(url, { credentials: "omit", mode: "cors" });
        status = response.status;
        if (response.ok) data = await response.json();
      } catch {
        // offline or server down: retried below
      }
      if (generation !== this._generation) return;
      if (status === 404) {
        // Not live yet (a draft) or gone: look again now and then, so a widget placed
        // ahead of a story's start comes alive when the story does.
        this._state("unavailable");
        this._title.textContent = "This live story is not available.";
        this._timer = setTimeout(() => this._load(generation), 60000);
        return;
      }
      if (!data) {
        this._state("reconnecting");
        this._say("Could not load; retrying…");
        this._later(() => this._load(generation));
        return;
      }
      this._render(data);
      if (data.story.status !== "ended") this._connect(generation);
      else this._state("ended");
    }

    _later(fn) {
      this._timer = setTimeout(fn, this._retry);
      this._retry = Math.min(this._retry * 2, 30000);
    }

    _say(text) { this._conn.textContent = text; }

    // Reflected on the element for host-page CSS and scripts:
    // loading, live, reconnecting, ended or unavailable.
    _state(state) { this.setAttribute("state", state); }

    _render(data) {
      this._seq = data.last_seq;
      this._showStory(data.story);
      this._link.href = absolute(data.story.url, this._cfg.base) || this._cfg.base;
      this._title.href = this._link.href;
      this._foot.hidden = false;
      this._setPinned(data.pinned ? data.pinned.html : null);
      this._timeline.replaceChildren();
      for (const update of data.updates) {
        const article = fragment(update.html, this._cfg.base);
        if (article) this._timeline.append(article);
      }
      this._touch();
      enhanceEmbeds(this._shadow, this._cfg.base);
    }

    _showStory(story) {
      this._title.textContent = story.title;
      this._box.setAttribute("aria-label", `Live updates: ${story.title}`);
      this._badge.textContent = story.status === "ended" ? "Ended" : "Live";
      this._badge.classList.remove("pending");
      this._badge.classList.toggle("live", story.status === "live");
    }

    _setPinned(html) {
      const article = html ? fragment(html, this._cfg.base) : null;
      this._pinnedSlot.replaceChildren(...(article ? [article] : []));
      this._pinned.hidden = !article;
    }

    _find(id) { return this._timeline.querySelector(`[data-update-id="${Number(id)}"]`); }

    _touch() { this._empty.hidden = this._timeline.childElementCount > 0; }

    _connect(generation) {
      const { slug, base } = this._cfg;
      // Resume from the last event applied: the server replays everything after it.
      const source = new EventSource(`${base}/stories/${slug}/events?last_event_id=${this._seq}`);
      this._source = source;
      for (const kind of KINDS) {
        source.addEventListener(kind, (event) => {
          let data;
          try { data = JSON.parse(event.data); } catch { return; }
          this._apply(kind, data);
        });
      }
      source.addEventListener("open", () => {
        this._retry = 1000;
        this._say("");
        this._state("live");
      });
      source.addEventListener("error", () => {
        if (generation !== this._generation) return;
        this._state("reconnecting");
        if (source.readyState === EventSource.CLOSED) {
          // The browser gave up (an error status); reconnect ourselves, backing off.
          source.close();
          this._say("Connection lost; retrying…");
          this._later(() => { if (generation === this._generation) this._connect(generation); });
        } else {
          this._say("Reconnecting…");
        }
      });
    }

    _apply(kind, data) {
      if (!data || typeof data.seq !== "number" || data.seq <= this._seq) return;
      this._seq = data.seq;
      const base = this._cfg.base;
      if (kind === "update" || kind === "edit") {
        const article = fragment(data.html, base);
        const existing = this._find(data.id);
        if (article && existing) existing.replaceWith(article);
        else if (article && kind === "update") {
          article.classList.add("is-new");
          const newest = this._cfg.order === "newest";
          if (newest) this._timeline.prepend(article);
          else this._timeline.append(article);
          while (this._timeline.childElementCount > this._cfg.limit) {
            (newest ? this._timeline.lastElementChild : this._timeline.firstElementChild).remove();
          }
        }
        if (kind === "edit" && this._pinnedSlot.querySelector(`[data-update-id="${Number(data.id)}"]`)) {
          this._setPinned(data.html);
        }
      } else if (kind === "delete") {
        this._find(data.id)?.remove();
        if (this._pinnedSlot.querySelector(`[data-update-id="${Number(data.id)}"]`)) this._setPinned(null);
      } else if (kind === "story" && data.story) {
        this._showStory(data.story);
        if ((data.change || []).includes("pin")) this._setPinned(data.html);
        if (data.story.status === "ended") {
          this._stop();
          this._state("ended");
          this._say("This story has ended.");
        }
      }
      this._touch();
      // New, edited and pinned updates are new elements: their embeds get a consent row.
      enhanceEmbeds(this._shadow, base);
      // For host pages that want to react (analytics, a "new" marker of their own).
      this.dispatchEvent(new CustomEvent("liveblog:event", { bubbles: true, detail: { kind, seq: data.seq, id: data.id ?? null } }));
    }
  }

  customElements.define("live-blog", LiveBlog);
})();
