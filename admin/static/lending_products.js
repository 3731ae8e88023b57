// Product form: live schedule preview. Sends the form's current values to the preview endpoint
// (GET, nothing saved) and shows the returned table. The form works without this.
(function () {
  var box = document.getElementById("schedule-preview");
  var form = box && box.closest("form");
  if (!box || !form) { return; }
  var timer = null;
  var seq = 0;
  function refresh() {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, key) {
      if (key !== "csrf_token") { params.append(key, value); }
    });
    var mine = ++seq;
    fetch(box.getAttribute("data-url") + "?" + params.toString(), { credentials: "same-origin" })
      .then(function (response) { return response.text(); })
      .then(function (html) { if (mine === seq) { box.innerHTML = html; } })
      .catch(function () { if (mine === seq) { box.textContent = "预览暂时不可用"; } });
  }
  function later() {
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(refresh, 300);
  }
  form.addEventListener("input", later);
  form.addEventListener("change", later);
  refresh();
})();
