import { startLiveTimeline } from "./live.js";

const root = document.querySelector("[data-live-story]");
if (root) window.liveblogTimeline = startLiveTimeline(root);
