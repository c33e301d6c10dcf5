// Obligation against surrendered and usable holdings per entity, with the vendored ECharts.
(function () {
  "use strict";

  function draw() {
    var el = document.getElementById("compliance-chart");
    var data = document.getElementById("compliance-data");
    if (!el || !data || !window.echarts) { return; }
    var parsed = JSON.parse(data.textContent || "{}");
    var chart = window.echarts.init(el, null, { renderer: "canvas" });
    chart.setOption({
      animation: false,
      grid: { left: 8, right: 8, top: 32, bottom: 8, containLabel: true },
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      xAxis: { type: "category", data: parsed.owners || [] },
      yAxis: { type: "value", name: "t" },
      series: [
        { name: "obligation", type: "bar", data: parsed.obligation || [] },
        { name: "surrendered", type: "bar", data: parsed.surrendered || [] },
        { name: "usable", type: "bar", data: parsed.usable || [] }
      ]
    });
    window.addEventListener("resize", function () { chart.resize(); });
    el.dataset.entities = String((parsed.owners || []).length);
    el.dataset.rendered = "true";
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
