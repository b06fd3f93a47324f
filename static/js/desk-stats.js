// The desk's reader numbers, kept current while the desk is open (and visible).
const panel = document.querySelector("[data-story-stats]");

async function refresh() {
  try {
    const response = await fetch(panel.dataset.storyStats, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    if (!response.ok) return;
    const stats = await response.json();
    for (const cell of panel.querySelectorAll("[data-stat]")) {
      const value = stats[cell.dataset.stat];
      if (typeof value === "number") cell.textContent = value.toLocaleString();
    }
  } catch {
    // Offline for a moment: the next round tries again.
  }
}

if (panel) {
  // As often as the servers report (LIVEBLOG_PRESENCE_INTERVAL), but at most every second.
  const every = Math.max(1000, Number(panel.dataset.interval) * 1000 || 5000);
  setInterval(() => { if (!document.hidden) refresh(); }, every);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
}
