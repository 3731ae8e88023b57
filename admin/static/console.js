/* 助贷 SCRM console: small behaviour on top of Bootstrap and htmx (no inline scripts: the CSP forbids them).
   - every table gets a horizontally scrolling box, so a wide table never widens the page;
   - the menu remembers which groups were folded (the group holding the current page stays open). */
(function () {
  "use strict";

  function wrapTables(root) {
    root.querySelectorAll("table").forEach(function (table) {
      if (table.closest(".table-scroll, .print-page")) return;
      var box = document.createElement("div");
      box.className = "table-scroll";
      table.parentNode.insertBefore(box, table);
      box.appendChild(table);
    });
  }

  var FOLDED = "scrm.nav.folded";

  function folded() {
    try { return JSON.parse(window.localStorage.getItem(FOLDED) || "[]"); } catch (e) { return []; }
  }

  function setupGroups(root) {
    var closed = folded();
    root.querySelectorAll("details.nav-group").forEach(function (group) {
      if (group.dataset.ready) return;
      group.dataset.ready = "1";
      var name = group.dataset.group;
      var holdsActive = !!group.querySelector(".active");
      if (closed.indexOf(name) >= 0 && !holdsActive) group.open = false;
      group.addEventListener("toggle", function () {
        var now = folded().filter(function (g) { return g !== name; });
        if (!group.open) now.push(name);
        try { window.localStorage.setItem(FOLDED, JSON.stringify(now)); } catch (e) { /* private mode */ }
      });
    });
  }

  function showActive(root) {
    var active = root.querySelector && root.querySelector(".sidenav a.active");
    if (active && window.matchMedia("(min-width: 992px)").matches) active.scrollIntoView({block: "nearest"});
  }

  function init(root) {
    wrapTables(root);
    setupGroups(root);
    showActive(root);
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:load", function (event) { init(event.detail.elt); });
})();
