// trailwatch: the only script the dashboard loads (the Content-Security-Policy allows no
// other, and no inline script). Progressive: every page works without it.
"use strict";

// Live feed: a table marked data-live refreshes its rows from the same URL with
// `fragment=rows` (server-rendered, already escaped) while the "live" box is checked.
(function live() {
  const table = document.querySelector("table[data-live]");
  const toggle = document.getElementById("live-toggle");
  if (!table || !toggle) return;
  const indicator = document.getElementById("live-indicator");
  let timer = null;
  async function refresh() {
    const url = new URL(window.location.href);
    url.searchParams.set("fragment", "rows");
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } });
      if (!response.ok) return;
      const html = await response.text();
      const doc = new DOMParser().parseFromString("<table><tbody>" + html + "</tbody></table>", "text/html");
      const rows = doc.querySelector("tbody");
      if (rows) table.tBodies[0].replaceChildren(...rows.childNodes);
    } catch (e) { /* the next tick tries again */ }
  }
  function set(on) {
    if (timer) { clearInterval(timer); timer = null; }
    if (on) { refresh(); timer = setInterval(refresh, 5000); }
    if (indicator) indicator.classList.toggle("on", on);
    try { localStorage.setItem("trailwatch.live", on ? "1" : "0"); } catch (e) {}
  }
  toggle.addEventListener("change", () => set(toggle.checked));
  let saved = null;
  try { saved = localStorage.getItem("trailwatch.live"); } catch (e) {}
  toggle.checked = saved === "1";
  set(toggle.checked);
})();

// Time range presets fill the since/until inputs without a round trip.
document.querySelectorAll("[data-since]").forEach((a) => {
  a.addEventListener("click", (ev) => {
    const since = document.querySelector("input[name=since]");
    const until = document.querySelector("input[name=until]");
    if (!since) return;
    ev.preventDefault();
    since.value = a.getAttribute("data-since");
    if (until) until.value = "";
    since.form.submit();
  });
});
