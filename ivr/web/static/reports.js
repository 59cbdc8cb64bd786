// Báo cáo: today's figures and the period's charts (Chart.js, served from this package).
// The figures come in data attributes (JSON): the page has no inline script (CSP).
"use strict";
(function () {
  if (typeof Chart === "undefined") return;
  const COLOURS = ["#2c5d9b", "#11671c", "#c77700", "#a40000"];
  const today = document.getElementById("today-chart");
  if (today) {
    new Chart(today, {
      type: "bar",
      data: {
        labels: today.dataset.labels.split("|"),
        datasets: [{ label: "Số cuộc gọi hôm nay", data: today.dataset.values.split("|").map(Number),
                     backgroundColor: ["#11671c", "#a40000", "#c77700", "#2c5d9b"] }],
      },
      options: { animation: false, responsive: false, plugins: { legend: { display: false } } },
    });
  }
  for (const canvas of document.querySelectorAll("canvas.report-chart")) {
    const chart = JSON.parse(canvas.dataset.chart);
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: chart.labels,
        datasets: chart.series.map((s, i) => ({ label: s.label, data: s.data, maxBarThickness: 48,
                                             backgroundColor: COLOURS[i % COLOURS.length] })),
      },
      options: {
        animation: false, responsive: false, indexAxis: canvas.dataset.horizontal ? "y" : "x",
        scales: { x: { ticks: { precision: 0 } }, y: { ticks: { precision: 0 } } },
        plugins: { legend: { display: chart.series.length > 1 } },
      },
    });
    canvas.dataset.drawn = "1";
  }
})();
