// Balance over the statement, drawn with the vendored ECharts (no CDN). The data sits in the
// swapped #lines fragment, so a filter or "show more" through htmx redraws the chart too.
(function () {
  "use strict";
  var chart = null;

  function points() {
    var data = document.getElementById("chart-data");
    return JSON.parse((data && data.textContent) || "[]");
  }

  function draw() {
    var el = document.getElementById("chart");
    if (!el || !window.echarts) { return; }
    var data = points();
    if (!chart) {
      chart = window.echarts.init(el, null, { renderer: "canvas" });
      window.addEventListener("resize", function () { chart.resize(); });
    }
    chart.setOption({
      animation: false,
      grid: { left: 8, right: 36, top: 16, bottom: 8, containLabel: true },
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", boundaryGap: false, data: data.map(function (p) { return p[0]; }),
               axisLabel: { hideOverlap: true } },
      yAxis: { type: "value", scale: true },
      series: [{
        type: "line", step: "end", showSymbol: data.length < 30, areaStyle: { opacity: 0.08 },
        color: "#1f7a55", data: data.map(function (p) { return Number(p[1]); })
      }]
    }, { notMerge: true });
    el.dataset.points = String(data.length);
    el.dataset.rendered = "true";
  }

  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.target && event.target.id === "lines") { draw(); }
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
