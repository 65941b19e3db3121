// Progressive enhancement of the console: every page works without this script.
// A form with `data-confirm` asks before it is sent (deleting, for one).
document.addEventListener("submit", (event) => {
  const question = event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
