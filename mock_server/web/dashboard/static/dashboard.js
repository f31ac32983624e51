/* smmkit dashboard: refresh marked regions in place, pause the journal tail, confirm risky
   forms. Plain JS, no build step. Regions carry data-refresh="<page url>"; the server answers
   that URL with only the region's HTML when asked with the X-Fragment header. */
(function () {
  "use strict";
  var EVERY_MS = 1500;

  function busy(region) {
    var active = document.activeElement;
    if (!active || !region.contains(active)) return false;
    return /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName);  // never clobber typing
  }

  function refresh(region) {
    if (region.dataset.paused === "1" || busy(region) || region.dataset.loading === "1") return;
    region.dataset.loading = "1";
    fetch(region.dataset.refresh, {headers: {"X-Fragment": "1"}, credentials: "same-origin",
                                   cache: "no-store"})
      .then(function (response) {
        if (response.status === 401) { window.location.reload(); return null; }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html !== null && !busy(region)) region.innerHTML = html;  // server-escaped HTML
      })
      .catch(function () { /* the server is restarting: try again next round */ })
      .then(function () { region.dataset.loading = "0"; });
  }

  setInterval(function () {
    document.querySelectorAll("[data-refresh]").forEach(refresh);
  }, EVERY_MS);

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-pause]");
    if (!button) return;
    var region = document.getElementById(button.dataset.pause);
    var paused = region.dataset.paused === "1";
    region.dataset.paused = paused ? "0" : "1";
    button.textContent = paused ? "Pause" : "Resume";
    button.setAttribute("aria-pressed", paused ? "false" : "true");
  });

  document.addEventListener("submit", function (event) {
    var question = event.target.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });
})();
