/* smmkit proxy page: refresh the exchange list in place, keep open answers open, pause on
   demand, apply a filter as soon as it is chosen. Plain JS, no build step. The region carries
   data-refresh="<page url with its filters>"; the proxy answers that URL with only the
   region's HTML (server-escaped) when asked with the X-Fragment header. */
(function () {
  "use strict";

  function openAnswers(region) {
    var open = {};
    region.querySelectorAll("details[open]").forEach(function (d) { open[d.dataset.seq] = 1; });
    return open;
  }

  function refresh(region) {
    if (region.dataset.paused === "1" || region.dataset.loading === "1") return;
    region.dataset.loading = "1";
    fetch(region.dataset.refresh, {headers: {"X-Fragment": "1"}, cache: "no-store"})
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null || region.dataset.paused === "1") return;
        var open = openAnswers(region);
        region.innerHTML = html;
        region.querySelectorAll("details").forEach(function (d) {
          if (open[d.dataset.seq]) d.open = true;
        });
      })
      .catch(function () { /* the proxy is restarting: try again next round */ })
      .then(function () { region.dataset.loading = "0"; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var region = document.getElementById("live");
    if (!region) return;
    setInterval(function () { refresh(region); }, Number(region.dataset.every) || 1500);
    document.querySelectorAll("#filters select").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
    var pause = document.getElementById("pause");
    pause.addEventListener("click", function () {
      var paused = region.dataset.paused === "1";
      region.dataset.paused = paused ? "0" : "1";
      pause.textContent = paused ? "Pause" : "Resume";
      pause.setAttribute("aria-pressed", paused ? "false" : "true");
    });
  });
})();
