// Close price (line) and volume by mode (stacked bars) per day, with the vendored ECharts.
(function () {
  "use strict";

  function draw() {
    var el = document.getElementById("market-chart");
    var data = document.getElementById("market-data");
    if (!el || !data || !window.echarts) { return; }
    var parsed = JSON.parse(data.textContent || "{}");
    var chart = window.echarts.init(el, null, { renderer: "canvas" });
    chart.setOption({
      animation: false,
      grid: { left: 8, right: 8, top: 32, bottom: 8, containLabel: true },
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      xAxis: { type: "category", data: parsed.days || [] },
      yAxis: [{ type: "value", name: "yuan/t", scale: true }, { type: "value", name: "t" }],
      series: [
        { name: "close", type: "line", data: parsed.close || [] },
        { name: "listing", type: "bar", stack: "t", yAxisIndex: 1, data: parsed.listing || [] },
        { name: "block", type: "bar", stack: "t", yAxisIndex: 1, data: parsed.block || [] }
      ]
    });
    window.addEventListener("resize", function () { chart.resize(); });
    el.dataset.days = String((parsed.days || []).length);
    el.dataset.rendered = "true";
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
