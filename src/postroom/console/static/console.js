// Postroom console: the few things a page does in the browser (no framework, no build step).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var boxes = Array.prototype.slice.call(
    document.querySelectorAll('input[type="checkbox"][form="bulk-retry"]')
  );
  var all = document.querySelector("input.select-all");
  var bulk = document.querySelector("button.retry-selected");
  function refresh() {
    var chosen = boxes.filter(function (b) { return b.checked; }).length;
    if (bulk) {
      bulk.disabled = chosen === 0;
      bulk.textContent = chosen ? "Retry selected (" + chosen + ")" : "Retry selected";
    }
    if (all) { all.checked = chosen > 0 && chosen === boxes.length; }
  }
  boxes.forEach(function (b) { b.addEventListener("change", refresh); });
  if (all) {
    all.addEventListener("change", function () {
      boxes.forEach(function (b) { b.checked = all.checked; });
      refresh();
    });
  }
  refresh();
});
