/* Document change list: refresh the status badge, stage, progress, chunk and failure cells of the rows on
   this page every 2 s while any of them is processing, from the admin's scoped JSON endpoint
   (no page reload). Stops as soon as none is processing. */
(function () {
  "use strict";
  var script = document.currentScript;
  var url = script && script.dataset.progressUrl;
  var INTERVAL_MS = 2000;
  if (!url) { return; }

  function cells(selector, id) {
    return document.querySelectorAll(selector + '[data-doc-id="' + id + '"]');
  }

  function idsOnPage() {
    var seen = {};
    document.querySelectorAll(".doc-status[data-doc-id]").forEach(function (el) {
      seen[el.dataset.docId] = el.dataset.docStatus;
    });
    return seen;
  }

  function anyProcessing(states) {
    return Object.keys(states).some(function (id) { return states[id] === "processing"; });
  }

  function apply(doc) {
    cells(".doc-status", doc.id).forEach(function (el) {
      el.dataset.docStatus = doc.status;
      var badge = el.querySelector(".doc-badge") || el.appendChild(document.createElement("span"));
      badge.className = "doc-badge doc-badge--" + doc.status;
      badge.textContent = doc.status_label;
    });
    cells(".doc-stage", doc.id).forEach(function (el) { el.textContent = doc.stage_label; });
    cells(".doc-chunks", doc.id).forEach(function (el) { el.textContent = doc.chunk_count; });
    cells(".doc-failure", doc.id).forEach(function (el) { el.textContent = doc.failure_label; });
    cells(".doc-progress", doc.id).forEach(function (el) {
      var bar = el.querySelector("progress");
      var text = el.querySelector(".doc-progress-text");
      if (bar) { bar.value = doc.percent; }
      if (text) { text.textContent = doc.percent + "%"; }
    });
  }

  function poll() {
    var states = idsOnPage();
    var ids = Object.keys(states);
    if (!ids.length || !anyProcessing(states)) { return; }
    fetch(url + "?ids=" + encodeURIComponent(ids.join(",")), {
      credentials: "same-origin",
      headers: { "Accept": "application/json" }
    })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        Object.keys(data.documents).forEach(function (id) { apply(data.documents[id]); });
        if (data.processing) { window.setTimeout(poll, INTERVAL_MS); }
      })
      .catch(function () {
        // A network blip or a logged-out session: try again later, a bit slower.
        window.setTimeout(poll, INTERVAL_MS * 3);
      });
  }

  if (anyProcessing(idsOnPage())) { window.setTimeout(poll, INTERVAL_MS); }
})();
