/*! liveblog embed resizer: fits each liveblog iframe to its content's height.
 * Add once per page, next to iframes from /embed/: <script src="https://HOST/static/embed-resizer.js" async></script>
 * A frame's height is only ever set from messages sent by that frame itself. */
(() => {
  "use strict";
  if (window.__liveblogResizer) return;
  window.__liveblogResizer = true;
  window.addEventListener("message", (event) => {
    const data = event.data;
    if (!data || data.type !== "liveblog:resize" || !Number.isFinite(data.height)) return;
    for (const frame of document.querySelectorAll("iframe")) {
      if (frame.contentWindow !== event.source) continue;
      let origin = null;
      try { origin = new URL(frame.src, location.href).origin; } catch { return; }
      if (origin !== event.origin) return;
      frame.style.height = `${Math.max(50, Math.min(Math.round(data.height), 20000))}px`;
      return;
    }
  });
})();
