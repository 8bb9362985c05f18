// airgate Action center: the only script, a static file (the CSP forbids inline script).
// The pages work without it; it adds live pending counts and "select all".
"use strict";
(function () {
  function refreshCounts(box) {
    fetch(box.dataset.src, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        var total = document.getElementById("pending-total");
        if (total) { total.textContent = data.shown; }
        var label = box.querySelector(".label");
        while (box.lastChild && box.lastChild !== label) { box.removeChild(box.lastChild); }
        if (!data.by_type.length) {
          var none = document.createElement("span");
          none.className = "count none";
          none.textContent = "none";
          box.appendChild(none);
        }
        data.by_type.forEach(function (c) {
          var span = document.createElement("span");   // textContent only: never HTML
          span.className = "count";
          span.dataset.type = c.type;
          span.textContent = c.name + " ";
          var b = document.createElement("b");
          b.textContent = c.shown;
          span.appendChild(b);
          box.appendChild(span);
        });
      })
      .catch(function () { /* offline or signed out: keep the last counts */ });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("live-counts");
    if (box) { setInterval(function () { refreshCounts(box); }, 5000); }
    var all = document.getElementById("pick-all");
    if (all) {
      all.addEventListener("change", function () {
        document.querySelectorAll("input[name=ids]").forEach(function (c) { c.checked = all.checked; });
      });
    }
  });
})();
