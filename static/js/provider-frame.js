// Inside /embed-frame/{key}: the provider's post (X, Bluesky, Mastodon, Instagram...),
// loaded only after the reader asked for it. Its scripts grow the post after loading, so
// we tell the page that frames us how tall the content is whenever that changes, and
// its embeds.js (or widget.js) fits the iframe to it (no inner scrollbar). This document
// is sandboxed with an opaque origin, and only a height is sent: any origin may receive it.
(() => {
  "use strict";
  if (window.parent === window) return;
  let last = -1;
  const report = () => {
    // The content's height, not the viewport's: html and body are as tall as what they
    // hold (the frame page must not make them height: 100%, or this would echo the
    // iframe's own height back).
    const body = document.body;
    if (!body) return;
    const style = getComputedStyle(body);
    const height = Math.ceil(
      body.getBoundingClientRect().height + parseFloat(style.marginTop) + parseFloat(style.marginBottom),
    );
    if (height === last) return;
    last = height;
    window.parent.postMessage({ type: "liveblog:embed-size", height }, "*");
  };
  const start = () => {
    if (window.ResizeObserver) {
      const observer = new ResizeObserver(report);
      observer.observe(document.documentElement);
      observer.observe(document.body);
    }
    report();
  };
  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
  // Images and the provider's own iframes settle after the document does.
  window.addEventListener("load", report);
})();
