// The live timeline shared by the reader page and the desk: one EventSource per page,
// resumed from the sequence number the page was rendered at, applying each event once.

const KINDS = ["update", "edit", "delete", "story"];

export function fragment(html) {
  const template = document.createElement("template");
  template.innerHTML = html.trim();
  return template.content.firstElementChild;
}

export function startLiveTimeline(root, options = {}) {
  const decorate = options.decorate || ((article) => article);
  const onStory = options.onStory || (() => {});
  // Where a new update goes (the reader page may hold it back while someone reads),
  // and a look at every event once it is applied (key events box, times, announcements).
  const insert = options.insert || ((node) => timeline.prepend(node));
  const onApplied = options.onApplied || (() => {});
  const timeline = root.querySelector("[data-timeline]");
  const pinnedBox = root.querySelector("[data-pinned]");
  const pinnedSlot = root.querySelector("[data-pinned-slot]");
  const statusLine = root.querySelector("[data-live-status]");
  let seq = Number(root.dataset.seq) || 0;
  let source = null;
  let retryDelay = 1000;
  let ended = root.dataset.status === "ended";

  const say = (text) => { if (statusLine) statusLine.textContent = text; };
  const findArticle = (id) => timeline.querySelector(`article[data-update-id="${id}"]`);

  function setPinned(html) {
    if (!pinnedSlot) return;
    pinnedSlot.replaceChildren();
    if (html) {
      const article = fragment(html);
      article.removeAttribute("id"); // the timeline copy keeps the anchor
      pinnedSlot.append(article);
    }
    if (pinnedBox) pinnedBox.hidden = !html;
  }

  function touchLastUpdated(iso) {
    const el = root.querySelector("[data-last-updated]");
    if (el && iso) {
      // HTML's <time datetime> allows at most milliseconds; the stream's times carry microseconds.
      el.dateTime = new Date(iso).toISOString();
      el.textContent = new Date(iso).toUTCString().replace(" GMT", " UTC");
    }
  }

  const handlers = {
    update(data) {
      const article = fragment(data.html);
      const existing = findArticle(data.id);
      if (existing) existing.replaceWith(article);
      else {
        const node = decorate(article, data);
        node.classList.add("is-new");
        insert(node, data);
      }
      root.querySelector("[data-empty]")?.remove();
      touchLastUpdated(data.created_at);
    },
    edit(data) {
      findArticle(data.id)?.replaceWith(fragment(data.html));
      const pinned = pinnedSlot?.querySelector(`[data-update-id="${data.id}"]`);
      if (pinned) setPinned(data.html);
      touchLastUpdated(data.edited_at);
    },
    delete(data) {
      const article = findArticle(data.id);
      (article?.closest("[data-desk-update]") || article)?.remove();
      if (pinnedSlot?.querySelector(`[data-update-id="${data.id}"]`)) setPinned(null);
    },
    story(data) {
      const story = data.story;
      if (data.change.includes("pin")) setPinned(data.html);
      const title = root.querySelector("[data-story-title]");
      if (title) title.textContent = story.title;
      const summary = root.querySelector("[data-story-summary]");
      if (summary) { summary.textContent = story.summary; summary.hidden = !story.summary; }
      const breaking = root.querySelector("[data-story-breaking]");
      if (breaking) breaking.hidden = !story.breaking;
      const status = root.querySelector("[data-story-status]");
      if (status) {
        status.className = `badge badge--${story.status}`;
        status.textContent = { live: "Live", ended: "Ended", draft: "Draft" }[story.status];
      }
      root.dataset.status = story.status;
      const endedNote = root.querySelector("[data-ended-note]");
      if (endedNote) endedNote.hidden = story.status !== "ended";
      onStory(data);
      if (story.status === "ended") {
        ended = true;
        source?.close();
        say("This story has ended.");
      }
    },
  };

  function connect() {
    const url = `${root.dataset.events}?last_event_id=${seq}`; // the stream's address, from the page
    source = new EventSource(url);
    for (const kind of KINDS) {
      source.addEventListener(kind, (event) => {
        const data = JSON.parse(event.data);
        if (data.seq <= seq) return; // already applied (page render and stream overlap)
        seq = data.seq;
        handlers[kind](data);
        onApplied(kind, data);
      });
    }
    source.addEventListener("open", () => { retryDelay = 1000; say("Live: updates appear automatically."); });
    source.addEventListener("error", () => {
      if (ended) return;
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (an error status, or 204 once the story ended); we try
        // again ourselves, from the last event we applied, backing off to 30 s.
        say("Connection lost; retrying…");
        setTimeout(connect, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 30000);
      } else {
        say("Reconnecting…");
      }
    });
  }

  if (root.dataset.live === "true" && !ended) connect();
  return { get seq() { return seq; }, close() { source?.close(); } };
}
