// The live dashboard: one snapshot per second over Server-Sent Events; rates are differences of successive
// snapshots; charts keep the last five minutes.
"use strict";

const WINDOW = 300;
const series = { t: [], impressions: [], starts: [], completes: [], decisionP50: [], decisionP99: [], playlistP50: [], playlistP99: [] };
let previous = null;

const $ = (id) => document.getElementById(id);
const fmt = (n, digits = 0) => (n === null || n === undefined || Number.isNaN(n)) ? "—" : Number(n).toLocaleString(undefined, { maximumFractionDigits: digits });

// The x range: the last WINDOW seconds up to the newest snapshot (or now, before the first). uPlot's own
// range pads a single point by its order of magnitude, so the first second of a chart spanned years.
function recentWindow(_u, _min, max) {
  const end = Number.isFinite(max) ? max : Date.now() / 1000;
  return [end - WINDOW, end];
}

function chart(el, labels) {
  const opts = {
    width: el.clientWidth || 420, height: 200,
    scales: { x: { time: true, range: recentWindow } },
    axes: [{ stroke: "#9fb3c8", grid: { stroke: "#222b36" } }, { stroke: "#9fb3c8", grid: { stroke: "#222b36" } }],
    series: [{}].concat(labels.map(([label, stroke]) => ({ label, stroke, width: 2, spanGaps: true }))),
  };
  return new uPlot(opts, [[]].concat(labels.map(() => [])), el);
}

const eventsChart = chart($("chart-events"), [["impressions", "#6fdc8c"], ["starts", "#78a9ff"], ["completes", "#f1c21b"]]);
const latencyChart = chart($("chart-latency"), [["decision p50", "#78a9ff"], ["decision p99", "#a56eff"], ["playlist p50", "#6fdc8c"], ["playlist p99", "#ff8389"]]);

function push(key, value) {
  series[key].push(value);
  if (series[key].length > WINDOW) series[key].shift();
}

function rows(tbody, items) {
  tbody.replaceChildren(...items.map((cells) => {
    const tr = document.createElement("tr");
    for (const c of cells) {
      const td = document.createElement("td");
      if (c && typeof c === "object") { td.textContent = c.text; td.className = c.cls; } else { td.textContent = c; }
      tr.appendChild(td);
    }
    return tr;
  }));
}

function render(s) {
  const t = Date.parse(s.at) / 1000;
  const c = s.counted;
  const dt = previous ? Math.max(t - previous.t, 1e-3) : null;
  const rate = (now, before) => (dt && before !== undefined) ? Math.max(now - before, 0) / dt : null;
  push("t", t);
  push("impressions", rate(c.impressions, previous?.counted.impressions));
  push("starts", rate(c.starts, previous?.counted.starts));
  push("completes", rate(c.completes, previous?.counted.completes));
  push("decisionP50", s.decision_ms.p50); push("decisionP99", s.decision_ms.p99);
  push("playlistP50", s.playlist_ms.p50); push("playlistP99", s.playlist_ms.p99);
  eventsChart.setData([series.t, series.impressions, series.starts, series.completes]);
  latencyChart.setData([series.t, series.decisionP50, series.decisionP99, series.playlistP50, series.playlistP99]);

  const sessions = s.channels.reduce((n, ch) => n + ch.sessions, 0);
  const fill = Object.values(s.fill).reduce((a, f) => ({ ad: a.ad + f.ad, slate: a.slate + f.slate }), { ad: 0, slate: 0 });
  $("sessions-total").textContent = fmt(sessions);
  $("events-total").textContent = fmt(c.impressions);
  $("impressions-rate").textContent = fmt(series.impressions[series.impressions.length - 1], 1);
  $("fill-rate").textContent = (fill.ad + fill.slate) > 0 ? fmt(100 * fill.ad / (fill.ad + fill.slate), 1) + " %" : "—";
  $("lag").textContent = s.lag_secs === null ? "—" : fmt(s.lag_secs, 1) + " s";
  $("updated-at").textContent = new Date(s.at).toLocaleTimeString();

  rows($("channels").tBodies[0], s.channels.map((ch) => {
    const f = s.fill[ch.id];
    const fillPct = f && (f.ad + f.slate) > 0 ? fmt(100 * f.ad / (f.ad + f.slate), 1) + " %" : "—";
    const open = ch.open_break ? `${ch.open_break} ${fmt(ch.open_break_elapsed_secs, 0)}/${fmt(ch.open_break_planned_secs, 0)} s` : "—";
    return [ch.id, fmt(ch.sessions), fmt(ch.breaks_seen), open, fillPct, ch.origin_age_secs === null ? "—" : fmt(ch.origin_age_secs, 1) + " s"];
  }));

  const dup = rate(s.duplicates, previous?.duplicates);
  const quarantined = Object.entries(s.quarantine);
  rows($("pipeline").tBodies[0], [
    ["completes counted", fmt(c.completes)],
    ["pods decided ahead", (s.decisions.ahead + s.decisions.on_request) > 0
      ? fmt(100 * s.decisions.ahead / (s.decisions.ahead + s.decisions.on_request), 1) + " %" : "—"],
    [s.decisions.on_request > 0 ? { text: "pods a playlist waited for", cls: "behind" } : "pods a playlist waited for", fmt(s.decisions.on_request)],
    ["duplicates/s", fmt(dup, 2)],
    ["retries (total)", fmt(s.retries)],
    ["quarantined (total)", fmt(quarantined.reduce((n, [, v]) => n + v, 0))],
    ...quarantined.map(([reason, n]) => ["  " + reason, fmt(n)]),
    ...Object.entries(s.shed).map(([cls, n]) => ["shed " + cls, fmt(n)]),
  ]);

  rows($("line-items").tBodies[0], s.line_items.map((l) => {
    const expected = l.goal * l.flight_elapsed;
    const ratio = expected > 0 ? l.delivered / expected : 1;
    const paused = s.controls && s.controls.holds.line_items.includes(l.id);
    // Only evenly paced line items follow a schedule; ASAP ones take what traffic offers until the goal.
    const status = paused ? { text: "paused", cls: "behind" }
      : l.delivered >= l.goal ? { text: "goal met", cls: "on" }
      : l.pacing === "asap" ? { text: "asap", cls: "" }
      : ratio < 0.9 ? { text: "behind", cls: "behind" } : ratio > 1.1 ? { text: "ahead", cls: "ahead" } : { text: "on pace", cls: "on" };
    return [l.id, l.tier, fmt(l.delivered), fmt(l.goal), status];
  }));

  rows($("demand").tBodies[0], s.demand.map((d) => {
    const spend = Object.entries(d.spend_micros).map(([cur, m]) => fmt(m / 1e6, 2) + " " + cur).join(", ") || "—";
    const timeouts = d.requests > 0 && d.timeouts / d.requests > 0.1 ? { text: fmt(d.timeouts), cls: "behind" } : fmt(d.timeouts);
    return [d.key, fmt(d.requests), fmt(d.bids), fmt(d.wins), fmt(d.losses), timeouts, fmt(d.errors), fmt(d.delivered.impressions), spend];
  }));

  const px = s.pixels;
  const sum = (o) => Object.values(o).reduce((n, v) => n + v, 0);
  const firedRate = rate(sum(px.fired), previous?.pixelsFired);
  rows($("pixels").tBodies[0], [
    ["fired (total)", fmt(sum(px.fired))],
    ["fired/s", fmt(firedRate, 1)],
    ...Object.entries(px.fired).map(([event, n]) => ["  " + event, fmt(n)]),
    ["retried", fmt(px.retried)],
    ["failed sends", fmt(sum(px.failed))],
    ...Object.entries(px.failed).map(([reason, n]) => ["  " + reason, fmt(n)]),
    [px.dead_lettered > 0 ? { text: "dead letters", cls: "behind" } : "dead letters", fmt(px.dead_lettered)],
    ["queued now", fmt(px.queued)],
  ]);
  rows($("pixel-hosts").tBodies[0], px.hosts.map((h) => [h.host, fmt(h.sends), fmt(h.ms.p50, 1), fmt(h.ms.p99, 1)]));

  $("conditioning-section").hidden = !s.conditioning;
  if (s.conditioning) {
    rows($("conditioning").tBodies[0], [
      ...Object.entries(s.conditioning.jobs).map(([state, n]) => ["jobs " + state, fmt(n)]),
      ...Object.entries(s.conditioning.skipped).map(([reason, n]) => ["ads skipped: " + reason, fmt(n)]),
    ]);
  }

  previous = { t, counted: c, duplicates: s.duplicates, pixelsFired: sum(px.fired) };
}

function connect() {
  // The read token, if the operator opened /dashboard#token=…: fragments never leave the browser.
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  const source = new EventSource(
    "/v1/dashboard/stream" + (token ? "?access_token=" + encodeURIComponent(token) : ""),
  );
  source.addEventListener("snapshot", (e) => {
    $("status").textContent = "live";
    $("status").className = "status live";
    render(JSON.parse(e.data));
  });
  source.onerror = () => {
    $("status").textContent = "reconnecting…";
    $("status").className = "status down";
  };
}

connect();
