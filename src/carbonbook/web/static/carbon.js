// Grams avoided per day, stacked by behaviour, drawn with the vendored ECharts (no CDN).
(function () {
  "use strict";

  function draw() {
    var el = document.getElementById("carbon-chart");
    var data = document.getElementById("carbon-data");
    if (!el || !data || !window.echarts) { return; }
    var chart = window.echarts.init(el, null, { renderer: "canvas" });
    var parsed = JSON.parse(data.textContent || "{}");
    chart.setOption({
      animation: false,
      grid: { left: 8, right: 8, top: 32, bottom: 8, containLabel: true },
      tooltip: { trigger: "axis" },
      legend: { type: "scroll", top: 0 },
      xAxis: { type: "category", data: parsed.days || [], axisLabel: { hideOverlap: true } },
      yAxis: { type: "value", name: "g" },
      series: (parsed.series || []).map(function (s) {
        return { name: s.name, type: "bar", stack: "grams", data: s.grams };
      })
    });
    window.addEventListener("resize", function () { chart.resize(); });
    el.dataset.series = String((parsed.series || []).length);
    el.dataset.rendered = "true";
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
