// Condition builder: per row, offer the chosen field's operators and its value box (a typed value or a
// list of choices); add and remove rows; switch between the builder and the expression (carrying the
// expression the server previewed, via htmx). The server reads the rows and writes the expression
// (admin/condition_form.py), so the form posts without this.
(function () {
  function setup(box) {
    var fields = JSON.parse(box.getAttribute("data-fields"));
    var prefix = box.getAttribute("data-prefix");
    var rows = box.querySelector(".cb-rows");
    var suffixes = { fen: "元", days: "天", rate: "%" };

    function sync(row, fieldChanged) {
      var spec = fields[row.querySelector(".cb-field").value];
      var op = row.querySelector(".cb-op");
      var choice = row.querySelector(".cb-choice");
      Array.prototype.forEach.call(op.options, function (o) {
        var off = !!spec && spec.ops.indexOf(o.value) < 0;
        o.hidden = off; o.disabled = off;
      });
      if (op.selectedOptions.length === 0 || op.selectedOptions[0].disabled) {
        var first = Array.prototype.find.call(op.options, function (o) { return !o.disabled; });
        if (first) { first.selected = true; }
      }
      var isChoice = !!spec && spec.unit === "choice";
      row.querySelector(".cb-value-box").hidden = isChoice;
      choice.hidden = !isChoice;
      choice.multiple = op.value === "in" || op.value === "not_in";
      row.querySelector(".cb-suffix").textContent = (spec && suffixes[spec.unit]) || "";
      if (fieldChanged) {
        choice.textContent = "";
        (isChoice ? spec.choices : []).forEach(function (c) { choice.add(new Option(c[1], c[0])); });
      }
    }

    function changed() {  // rows added or removed: the server's preview of the expression follows
      box.querySelector(".cb-builder").dispatchEvent(new Event("change", { bubbles: true }));
    }

    function wire(row) {
      row.querySelector(".cb-field").addEventListener("change", function () { sync(row, true); });
      row.querySelector(".cb-op").addEventListener("change", function () { sync(row, false); });
      row.querySelector(".cb-remove").addEventListener("click", function () {
        if (rows.querySelectorAll(".cb-row").length > 1) { row.remove(); } else {
          row.querySelector(".cb-field").value = ""; row.querySelector(".cb-value").value = ""; sync(row, true);
        }
        changed();
      });
      sync(row, false);
    }

    box.querySelector(".cb-add").addEventListener("click", function () {
      var all = rows.querySelectorAll(".cb-row");
      var next = 0;
      all.forEach(function (r) { next = Math.max(next, Number(r.getAttribute("data-index")) + 1); });
      var row = all[all.length - 1].cloneNode(true);
      row.setAttribute("data-index", String(next));
      row.querySelectorAll("[name]").forEach(function (el) {
        el.name = el.name.replace(/^(.*)-\d+-(\w+)$/, "$1-" + next + "-$2");
      });
      row.querySelector(".cb-field").value = ""; row.querySelector(".cb-value").value = "";
      rows.appendChild(row);
      wire(row); sync(row, true); changed();
    });
    rows.querySelectorAll(".cb-row").forEach(wire);

    box.querySelectorAll(".cb-mode-input").forEach(function (radio) {
      radio.addEventListener("change", function () {
        var advanced = box.querySelector("input[name='" + prefix + "-mode']:checked").value === "advanced";
        var written = box.querySelector(".cb-preview code[data-expression]");
        if (advanced && written) { box.querySelector(".cb-expression").value = written.textContent; }
        box.querySelector(".cb-builder").hidden = advanced;
        box.querySelector(".cb-advanced").hidden = !advanced;
      });
    });
  }
  document.querySelectorAll(".cond-builder").forEach(setup);
})();
