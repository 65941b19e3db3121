// Progressive enhancement of the console: every page works without this script.
// A form with `data-confirm` asks before it is sent (deleting, for one).
document.addEventListener("submit", (event) => {
  const question = event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// A form with `data-progress` (an upload) is sent by XMLHttpRequest, so that the bytes sent
// show in its `progress.upload-progress`, with the percentage and sizes read out politely.
// Once the server has answered, its answer is shown: the page its 303 led to is opened (the
// form's page again, with its notice), and a refusal (a page with the API's message and
// status) replaces this page. Without the script the form posts as usual.
const readableSize = (bytes) => {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
};

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (event.defaultPrevented || !form.hasAttribute("data-progress")) {
    return;
  }
  const bar = form.querySelector("progress.upload-progress");
  if (!bar) {
    return;
  }
  event.preventDefault();
  const box = bar.parentElement;
  const text = box.querySelector(".progress-text");
  const button = form.querySelector("button[type=submit]");
  const say = (message) => {
    text.textContent = message;
  };
  box.hidden = false;
  button.disabled = true;
  bar.value = 0;
  say("Starting the upload…");

  const xhr = new XMLHttpRequest();
  xhr.open("POST", form.action);
  xhr.upload.addEventListener("progress", (progress) => {
    if (!progress.lengthComputable) {
      bar.removeAttribute("value");
      say(`${readableSize(progress.loaded)} sent`);
      return;
    }
    const percent = Math.floor((progress.loaded / progress.total) * 100);
    bar.value = percent;
    bar.textContent = `${percent}%`;
    say(`${percent}% (${readableSize(progress.loaded)} of ${readableSize(progress.total)})`);
  });
  xhr.upload.addEventListener("load", () => {
    bar.value = 100;
    say("Sent; the server is checking and storing it…");
  });
  xhr.addEventListener("load", () => {
    const redirected = xhr.responseURL && xhr.responseURL !== form.action;
    if (redirected && xhr.status === 200) {
      window.location.assign(xhr.responseURL);
      return;
    }
    // A refusal: the server's page (with its message) in place of this one. Its script is
    // not run again; this one's listeners stay on the document.
    const page = new DOMParser().parseFromString(xhr.responseText, "text/html");
    document.replaceChild(document.adoptNode(page.documentElement), document.documentElement);
    window.scrollTo(0, 0);
  });
  xhr.addEventListener("error", () => {
    button.disabled = false;
    say("The upload failed: the connection to the server was lost. Try again.");
  });
  xhr.send(new FormData(form));
});
// Live updates (the train job page): an element with `data-live="<url>"` is refreshed every
// 2 s (or its `data-live-every` milliseconds) with the HTML fragment at that URL, until the
// fragment says `data-running="false"` (the job ended) or the fragment cannot be had (session
// expired: the page's own links still work).
const LIVE_EVERY_MS = 2000;
document.querySelectorAll("[data-live]").forEach((section) => {
  const url = section.getAttribute("data-live");
  const every = Number(section.getAttribute("data-live-every")) || LIVE_EVERY_MS;
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
    if (running()) setTimeout(refresh, every);
  };
  if (running()) setTimeout(refresh, every);
});
