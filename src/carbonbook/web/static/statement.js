// Balance over the statement, drawn with the vendored ECharts (no CDN).
(function () {
  function draw() {
    var el = document.getElementById("chart");
    var data = JSON.parse(document.getElementById("chart-data").textContent || "[]");
    if (!el || !window.echarts) { return; }
    var chart = window.echarts.init(el, null, { renderer: "canvas" });
    chart.setOption({
      animation: false,
      grid: { left: 56, right: 16, top: 16, bottom: 32 },
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: data.map(function (p) { return p[0]; }) },
      yAxis: { type: "value", scale: true },
      series: [{ type: "line", step: "end", showSymbol: false, data: data.map(function (p) { return Number(p[1]); }) }]
    });
    el.dataset.rendered = "true";
    window.addEventListener("resize", function () { chart.resize(); });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
