// Segment builder: show only the operators of the chosen field (the form works without this).
(function () {
  function sync(row) {
    var field = row.querySelector(".rule-field").value;
    var cmp = row.querySelector(".rule-cmp");
    var firstVisible = null;
    cmp.querySelectorAll("optgroup").forEach(function (group) {
      var show = !field || group.getAttribute("data-field") === field;
      group.hidden = !show;
      group.disabled = !show;
      if (show && !firstVisible) { firstVisible = group.querySelector("option"); }
    });
    var selected = cmp.options[cmp.selectedIndex];
    if (field && (!selected || selected.parentNode.getAttribute("data-field") !== field) && firstVisible) {
      firstVisible.selected = true;
    }
  }
  document.querySelectorAll(".rule-row").forEach(function (row) {
    sync(row);
    row.querySelector(".rule-field").addEventListener("change", function () { sync(row); });
  });
})();
