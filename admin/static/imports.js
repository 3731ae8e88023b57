// Import job page: poll the job's progress until it is done, then show the report link.
(function () {
  var box = document.getElementById("import-job");
  if (!box || box.dataset.finished === "true") return;
  var url = box.dataset.progressUrl;
  function set(id, value) { var el = document.getElementById(id); if (el) el.textContent = value; }
  function tick() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (job) {
        if (!job) { setTimeout(tick, 5000); return; }
        set("job-status", job.status_label);
        ["processed", "created", "duplicates_in_file", "duplicates_existing", "collisions", "errors", "assigned"]
          .forEach(function (k) { set("c-" + k, job[k]); });
        var bar = document.getElementById("job-bar");
        if (bar && job.total) { bar.max = job.total; bar.value = job.processed; }
        if (job.message) {
          set("job-message", job.message);
          document.getElementById("job-message").className = job.status === "failed" ? "error" : "warning";
        }
        if (job.has_report) document.getElementById("job-report").hidden = false;
        if (job.finished) { if (bar) { bar.max = 1; bar.value = 1; } return; }
        setTimeout(tick, 1500);
      })
      .catch(function () { setTimeout(tick, 5000); });
  }
  setTimeout(tick, 1000);
})();
