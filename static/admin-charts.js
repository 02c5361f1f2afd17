// Draws the dashboard's charts from /admin/charts.json with the vendored Chart.js.
// Labels come from the page (data-* attributes), so the script holds no language.
(function () {
  "use strict";
  // A new range applies at once (the page has no inline script; see the CSP).
  Array.prototype.forEach.call(document.querySelectorAll("select[data-autosubmit]"), function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
  var root = document.getElementById("charts");
  if (!root || !window.Chart) { return; }
  var label = function (name) { return root.dataset[name] || name; };
  var colors = { referred: "#07c160", channel: "#576b95", other: "#c9cdd4", k: "#fa9d3b" };
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.maintainAspectRatio = false;

  fetch(root.dataset.source, { credentials: "same-origin" })
    .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
    .then(draw)
    .catch(function (e) { root.insertAdjacentText("afterbegin", "charts: " + e); });

  function draw(d) {
    var days = d.days.map(function (s) { return s.slice(5); });
    new Chart(document.getElementById("chart-daily"), {
      type: "bar",
      data: { labels: days, datasets: [
        { label: label("referred"), data: d.referred, backgroundColor: colors.referred },
        { label: label("channel"), data: d.channel, backgroundColor: colors.channel },
        { label: label("other"), data: d.other, backgroundColor: colors.other }
      ] },
      options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } }
    });
    var f = d.funnel;
    new Chart(document.getElementById("chart-funnel"), {
      type: "bar",
      data: {
        labels: [label("scans"), label("follows"), label("old"), label("retained"), label("tier")],
        datasets: [{ data: [f.scans, f.follows, f.follows_7d_old, f.retained_7d, f.reached_tier],
          backgroundColor: ["#576b95", "#07c160", "#9ad9b4", "#06ad56", "#fa9d3b"] }]
      },
      options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } }
    });
    new Chart(document.getElementById("chart-k"), {
      type: "line",
      data: { labels: days, datasets: [{ label: label("k"), data: d.k_factor, borderColor: colors.k,
        backgroundColor: colors.k, spanGaps: true, tension: 0.25, pointRadius: 2 }] },
      options: { scales: { y: { beginAtZero: true } } }
    });
  }
})();
