// Progressive enhancement of the console: every page works without this script.
// A form with `data-confirm` asks before it is sent (deleting, for one).
document.addEventListener("submit", (event) => {
  const question = event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// Live updates (the train job page): an element with `data-live="<url>"` is refreshed every
// 2 s with the HTML fragment at that URL, until the fragment says `data-running="false"` (the
// job ended) or the fragment cannot be had (session expired: the page's own links still work).
const LIVE_EVERY_MS = 2000;
document.querySelectorAll("[data-live]").forEach((section) => {
  const url = section.getAttribute("data-live");
  const running = () => !section.querySelector('[data-running="false"]');
  const refresh = async () => {
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
      // A redirect means the session ended (to the login form): stop rather than show it.
      if (!response.ok || response.redirected) return;
      section.innerHTML = await response.text();
    } catch (_) {
      // A network hiccup: try again next time.
    }
    if (running()) setTimeout(refresh, LIVE_EVERY_MS);
  };
  if (running()) setTimeout(refresh, LIVE_EVERY_MS);
});
