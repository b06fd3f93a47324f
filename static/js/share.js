// Share an update by its permalink: the Web Share sheet where the browser has one,
// otherwise the link is copied to the clipboard (or shown, selected, to copy by hand).

function permalink(article) {
  const link = article.querySelector("a.update__time");
  return new URL(link.getAttribute("href"), window.location.href).href;
}

function title(article) {
  const headline = article.querySelector(".update__headline")?.textContent.trim();
  const story = document.querySelector("[data-story-title]")?.textContent.trim();
  return headline || story || document.title;
}

function showManualCopy(button, url) {
  let field = button.parentElement.querySelector("input.update__share-url");
  if (!field) {
    field = document.createElement("input");
    field.className = "update__share-url";
    field.readOnly = true;
    field.setAttribute("aria-label", "Link to this update");
    button.after(field);
  }
  field.value = url;
  field.focus();
  field.select();
}

async function share(button, announce) {
  const article = button.closest("article[data-update-id]");
  if (!article) return;
  const url = permalink(article);
  if (navigator.share) {
    try {
      await navigator.share({ title: title(article), url });
    } catch (error) {
      if (error.name !== "AbortError") showManualCopy(button, url);
    }
    return;
  }
  try {
    await navigator.clipboard.writeText(url);
  } catch {
    showManualCopy(button, url);
    announce("Copy the link from the field next to the button.");
    return;
  }
  button.textContent = "Link copied";
  button.dataset.copied = "";
  announce("Link to this update copied.");
  setTimeout(() => { button.textContent = "Share"; delete button.dataset.copied; }, 2500);
}

export function enableShareButtons(scope = document) {
  for (const button of scope.querySelectorAll("button[data-share][hidden]")) {
    button.hidden = false;
    button.setAttribute("aria-label", "Share a link to this update");
  }
}

export function handleShareClicks(root, announce) {
  root.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-share]");
    if (button) share(button, announce);
  });
}
