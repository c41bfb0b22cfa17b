// Sortable tables: click a header to sort by that column, click again to reverse.
// Cells are compared by their data-sort attribute when they have one (numbers), else by their text.
// Only textContent and attributes are read and rows are moved, never rebuilt from strings, so no
// text from the data can become markup.
"use strict";
(function () {
  function key(cell, numeric) {
    if (!cell) return null;
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
    if (raw === "") return null;
    if (numeric) { var n = parseFloat(raw); return isNaN(n) ? null : n; }
    return raw.toLowerCase();
  }
  function sortBy(table, th, index) {
    var body = table.tBodies[0];
    if (!body) return;
    var numeric = th.getAttribute("data-type") === "num";
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[index], numeric), y = key(b.cells[index], numeric);
      if (x === null && y === null) return 0;
      if (x === null) return 1;   // empty cells last, whichever the direction
      if (y === null) return -1;
      var c = x < y ? -1 : x > y ? 1 : 0;
      return ascending ? c : -c;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }
  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
      var head = table.tHead && table.tHead.rows[0];
      if (!head) return;
      Array.prototype.forEach.call(head.cells, function (th, index) {
        th.tabIndex = 0;
        th.addEventListener("click", function () { sortBy(table, th, index); });
        th.addEventListener("keydown", function (e) { if (e.key === "Enter") sortBy(table, th, index); });
      });
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
