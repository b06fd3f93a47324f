// Inside /embed/{slug}: tell the page that frames us how tall we are, whenever that
// changes, so its embed-resizer.js can fit the iframe to the content (no inner scrollbar).
// Only a height is sent, so any origin may receive it.
if (window.parent !== window) {
  let last = -1;
  const report = () => {
    const height = Math.ceil(document.body.getBoundingClientRect().height);
    if (height === last) return;
    last = height;
    window.parent.postMessage({ type: "liveblog:resize", height }, "*");
  };
  new ResizeObserver(report).observe(document.body);
  report();
}
