// The desk's "Copy" buttons next to the embed snippets: clipboard API where the page
// may use it, otherwise select the text and let the browser's own copy command do it.
for (const button of document.querySelectorAll("[data-copy]")) {
  const field = document.getElementById(button.dataset.copy);
  const status = document.querySelector(`[data-copy-status="${button.dataset.copy}"]`);
  if (!field) continue;
  button.addEventListener("click", async () => {
    let copied = false;
    try {
      await navigator.clipboard.writeText(field.value);
      copied = true;
    } catch {
      field.focus();
      field.select();
      copied = document.execCommand("copy");
    }
    if (status) status.textContent = copied ? "Copied." : "Select the code and copy it (Ctrl+C).";
  });
}
