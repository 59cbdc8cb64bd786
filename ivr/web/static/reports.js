// Báo cáo: today's figures as a bar chart (Chart.js, served from this package).
"use strict";
(function () {
  const canvas = document.getElementById("today-chart");
  if (!canvas || typeof Chart === "undefined") return;
  new Chart(canvas, {
    type: "bar",
    data: {
      labels: canvas.dataset.labels.split("|"),
      datasets: [{ label: "Số cuộc gọi hôm nay", data: canvas.dataset.values.split("|").map(Number),
                   backgroundColor: ["#11671c", "#a40000", "#c77700", "#2c5d9b"] }],
    },
    options: { animation: false, responsive: false, plugins: { legend: { display: false } } },
  });
})();
