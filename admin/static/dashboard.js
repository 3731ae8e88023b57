// Draws the home dashboard's charts with the vendored ECharts; a click on a bar or a funnel step opens the
// list behind it (the same drill-down URL as the table next to the chart); so does a point of a snapshot line.
(function () {
  "use strict";
  var dataNode = document.getElementById("dash-data");
  if (!dataNode || typeof echarts === "undefined") { return; }
  var charts = JSON.parse(dataNode.textContent || "{}");
  var instances = [];
  function yuan(v) { return "¥" + Number(v).toLocaleString("zh-CN", { maximumFractionDigits: 2 }); }
  function draw(node, spec, name) {
    var chart = echarts.init(node, null, { renderer: "canvas" });
    var fmt = spec.unit === "yuan" ? yuan
      : spec.unit === "percent" ? function (v) { return v === null || v === undefined ? "—" : Number(v).toFixed(1) + "%"; }
      : function (v) { return String(v); };
    var axis = spec.unit === "yuan" ? function (v) { return v >= 10000 ? (v / 10000) + "万" : v; }
      : spec.unit === "percent" ? "{value}%" : "{value}";
    var option;
    if (spec.kind === "line") {
      // history from the nightly snapshots: one line per bucket or per disbursement month
      option = {
        tooltip: { trigger: "axis", valueFormatter: function (v) { return fmt(v); } },
        legend: { type: "scroll", top: 0 },
        grid: { left: 8, right: 16, top: 32, bottom: 8, containLabel: true },
        xAxis: { type: "category", data: spec.x, boundaryGap: false },
        yAxis: { type: "value", axisLabel: { formatter: axis } },
        series: spec.series.map(function (s) {
          // each point carries the drill-down link of its loans (the snapshot's rows behind the figure)
          var data = s.data.map(function (v, i) { return v === null ? null : { value: v, url: s.urls[i] }; });
          return { type: "line", name: s.name, data: data, connectNulls: false, symbolSize: 8,
                   cursor: "pointer" };
        })
      };
    } else if (name === "funnel") {
      option = {
        tooltip: { trigger: "item", formatter: function (p) { return p.name + "：" + fmt(p.value); } },
        series: [{ type: "funnel", left: "5%", width: "90%", top: 10, bottom: 10, sort: "none", minSize: "8%",
                   label: { show: true, position: "inside", formatter: function (p) { return p.name + " " + p.value; } },
                   data: spec.items.map(function (i) { return { name: i.name, value: i.value, url: i.url }; }) }]
      };
    } else {
      var items = spec.items.slice().reverse();
      option = {
        tooltip: { trigger: "axis", axisPointer: { type: "shadow" },
                   valueFormatter: function (v) { return fmt(v); } },
        grid: { left: 8, right: 24, top: 8, bottom: 8, containLabel: true },
        xAxis: { type: "value", axisLabel: { formatter: axis } },
        yAxis: { type: "category", data: items.map(function (i) { return i.name; }), axisLabel: { width: 120, overflow: "truncate" } },
        series: [{ type: "bar", name: spec.title, barMaxWidth: 22,
                   data: items.map(function (i) { return { value: i.value, url: i.url }; }) }]
      };
    }
    option.animation = false;  // drawn at once: no half-faded chart on a slow phone or in a screenshot
    chart.setOption(option);
    chart.on("click", function (p) { if (p.data && p.data.url) { window.location.href = p.data.url; } });
    node.setAttribute("data-rendered", "1");
    instances.push(chart);
  }
  document.querySelectorAll("[data-chart]").forEach(function (node) {
    var name = node.getAttribute("data-chart");
    var spec = charts[name];
    if (!spec || !(spec.kind === "line" ? spec.x.length : spec.items.length)) { node.classList.add("dash-empty"); node.textContent = "本期暂无数据"; return; }
    draw(node, spec, name);
  });
  window.addEventListener("resize", function () { instances.forEach(function (c) { c.resize(); }); });
}());
