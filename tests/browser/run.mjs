// Headless Chromium against a running Interlude (started by scripts/browser-test.sh):
// 1. the dashboard connects, shows live numbers, and they change while the load generator runs
//    (screenshot: target/dashboard.png);
// 2. hls.js plays a fresh session's stitched stream across an ad break, and that ad's beacons are counted by
//    the pipeline (checked through GET /v1/ads/{ad_instance_id}/events).
// 3. hls.js plays an HLS Interstitials session across a break: it loads the asset list, plays the ad, the page
//    fires the asset's tracking URLs, and the pipeline counts them.
import { chromium } from "playwright-core";
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";

const require = createRequire(import.meta.url);
const base = process.argv[2];
const screenshot = process.argv[3] ?? "target/dashboard.png";
// The server for the interstitials check (a demo at 1x speed; defaults to the same server).
const sgaiBase = process.argv[4] ?? base;
// That server's read token (`edge.read_token`), when it has one: its per-ad event reads need it.
const sgaiRead = process.env.INTERLUDE_READ_TOKEN ? { authorization: `Bearer ${process.env.INTERLUDE_READ_TOKEN}` } : {};
if (!base) {
  console.error("usage: node run.mjs http://127.0.0.1:PORT [screenshot.png]");
  process.exit(2);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// A poll's JSON, or null while the server sheds load (503 "overloaded: retry later"): the poll asks again, as a
// client told to retry later does. Any other failure is the test's.
async function pollJson(url, init) {
  const r = await fetch(url, init);
  if (r.status === 503) return null;
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}: ${await r.text()}`);
  return r.json();
}
async function until(what, check, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(250);
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required",
  ],
});
let failed = false;
try {
  // 1. The dashboard.
  const dash = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await dash.goto(`${base}/dashboard`);
  await until("the dashboard to go live", async () => (await dash.textContent("#status")) === "live", 20_000);
  const first = await dash.textContent("#events-total");
  const firstAt = await dash.textContent("#updated-at");
  console.log(`dashboard live: impressions ${first} at ${firstAt}`);
  const changed = await until("impressions on the dashboard to change", async () => {
    const now = await dash.textContent("#events-total");
    return now !== first && now !== "—" ? now : null;
  }, 120_000);
  const sessions = await dash.textContent("#sessions-total");
  console.log(`dashboard updated without reload: impressions ${first} -> ${changed}, sessions ${sessions}`);
  if (Number(sessions.replace(/\D/g, "")) <= 0) throw new Error("no sessions on the dashboard");
  mkdirSync(screenshot.replace(/\/[^/]*$/, ""), { recursive: true });
  await dash.screenshot({ path: screenshot, fullPage: true });
  console.log(`screenshot: ${screenshot}`);

  // 2. hls.js across a break.
  const created = await (await fetch(`${base}/v1/sessions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ channel: "live1", viewer: { device: "desktop", platform: "web" } }),
  })).json();
  const player = await browser.newPage();
  const errors = [];
  player.on("pageerror", (e) => errors.push(String(e)));
  await player.setContent(`<!doctype html><video id="v" muted autoplay playsinline width="640"></video>`);
  await player.addScriptTag({ path: require.resolve("hls.js/dist/hls.min.js") });
  await player.evaluate((url) => {
    window.fatal = null;
    const video = document.getElementById("v");
    const hls = new Hls({ lowLatencyMode: false });
    hls.on(Hls.Events.ERROR, (_, data) => { if (data.fatal) window.fatal = `${data.type}: ${data.details}`; });
    hls.loadSource(url);
    hls.attachMedia(video);
    video.play().catch(() => {});
  }, created.master_url);
  await until("playback to start", async () => (await player.evaluate(() => document.getElementById("v").currentTime)) > 1, 30_000);
  console.log("hls.js is playing the stitched stream");

  // The first ad of the first break that starts after playback started (a break the session joined mid-way
  // has its first ads in the past: the player never fetches them), then its beacons.
  const tracking = async () => (await fetch(created.tracking_url)).json();
  const seen = new Set((await tracking()).avails.map((a) => a.avail_id));
  const ad = await until("a new break with ads in the session", async () => {
    const t = await tracking();
    const avail = t.avails.find((a) => !seen.has(a.avail_id) && a.ads.length > 0);
    return avail ? avail.ads[0] : null;
  }, 180_000);
  console.log(`break reached: ad ${ad.ad_instance_id} (${ad.creative_id}, ${ad.duration_secs} s)`);
  const counted = await until("the ad's impression and completion to be counted", async () => {
    const fatal = await player.evaluate(() => window.fatal);
    if (fatal) throw new Error(`hls.js fatal error: ${fatal}`);
    const r = await pollJson(`${base}/v1/ads/${ad.ad_instance_id}/events`);
    if (!r) return null;
    return r.counted.includes("impression") && r.counted.includes("complete") ? r.counted : null;
  }, 180_000);
  console.log(`counted for the ad: ${counted.join(", ")}`);
  const before = await player.evaluate(() => document.getElementById("v").currentTime);
  await sleep(3000);
  const after = await player.evaluate(() => document.getElementById("v").currentTime);
  if (!(after > before)) throw new Error(`playback stalled after the ad (${before} -> ${after})`);
  console.log(`playback continues after the ad: ${before.toFixed(1)} s -> ${after.toFixed(1)} s`);
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  await player.close();

  // 3. HLS Interstitials: hls.js plays an interstitials session (content untouched, breaks as
  //    EXT-X-DATERANGE CLASS="com.apple.hls.interstitial"), fetches the break's asset list, plays the ad
  //    itself and fires the asset's tracking URLs; the pipeline counts them.
  const sgai = await (await fetch(`${sgaiBase}/v1/sessions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ channel: "live1", mode: "interstitials", viewer: { device: "desktop", platform: "web" } }),
  })).json();
  // Beacons from a "HeadlessChrome" user agent are quarantined as bot traffic (IAB/MRC general invalid
  // traffic), rightly: this page reports as the desktop browser it stands for.
  const page = await browser.newPage({
    userAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",
  });
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  await page.setContent(`<!doctype html><video id="v" muted autoplay playsinline width="640"></video>`);
  await page.addScriptTag({ path: require.resolve("hls.js/dist/hls.min.js") });
  await page.evaluate((url) => {
    window.fatal = null;
    const s = (window.sgai = { lists: {}, limits: {}, fired: [], started: {}, ended: {}, current: null, currentBreak: null });
    const fire = (u) => {
      if (!u) return;
      s.fired.push(u);
      fetch(u, { mode: "no-cors", keepalive: true }).catch(() => {});
    };
    const video = document.getElementById("v");
    const hls = new Hls({ lowLatencyMode: false });
    s.log = [];
    hls.on(Hls.Events.ERROR, (_, d) => {
      s.log.push(`error ${d.type} ${d.details} fatal=${d.fatal}`);
      if (d.fatal) window.fatal = `${d.type}: ${d.details}`;
    });
    for (const e of ["hlsInterstitialStarted", "hlsInterstitialAssetStarted", "hlsInterstitialAssetEnded", "hlsInterstitialEnded", "hlsInterstitialsPrimaryResumed", "hlsManifestParsed"]) {
      hls.on(e, (_, d) => s.log.push(`${e} ${(d && d.event && d.event.identifier) || ""}${d && d.assetListIndex !== undefined ? `#${d.assetListIndex}` : ""} t=${video.currentTime.toFixed(1)}`));
    }
    hls.on(Hls.Events.INTERSTITIAL_STARTED, (_, d) => { s.limits[d.event.identifier] = d.event.playoutLimit; });
    hls.on(Hls.Events.ASSET_LIST_LOADED, (_, d) => { s.lists[d.event.identifier] = d.assetListResponse; });
    // The asset list as hls.js loaded it, or (when the asset starts first) fetched again: the session's pod
    // for the break is fixed, so both answers are the same.
    const listFor = async (ev) =>
      ev.assetListResponse || s.lists[ev.identifier] ||
      (s.lists[ev.identifier] = await (await fetch(ev.assetListUrl)).json());
    // A player-side integration: impression and start when the ad asset starts, quartiles by its play position
    // (IAB: firstQuartile at 25 % played, ...), complete when it ends. Slate assets carry no tracking.
    const quartiles = [[0.25, "firstQuartile"], [0.5, "midpoint"], [0.75, "thirdQuartile"]];
    hls.on(Hls.Events.INTERSTITIAL_ASSET_STARTED, async (_, d) => {
      (s.started[d.event.identifier] ??= []).push(d.assetListIndex);
      const list = await listFor(d.event);
      const asset = list && list.ASSETS[d.assetListIndex];
      const t = asset && asset["X-INTERLUDE-TRACKING"];
      if (!t) return;
      s.current = t;
      s.currentBreak = d.event.identifier;
      fire(t.events.impression);
      fire(t.events.start);
      const due = [...quartiles];
      const timer = setInterval(() => {
        const played = d.player.destroyed ? 1 : d.player.currentTime / asset.DURATION;
        while (due.length && played >= due[0][0]) fire(t.events[due.shift()[1]]);
        if (!due.length) clearInterval(timer);
      }, 200);
    });
    hls.on(Hls.Events.INTERSTITIAL_ASSET_ENDED, async (_, d) => {
      (s.ended[d.event.identifier] ??= []).push(d.assetListIndex);
      const list = await listFor(d.event);
      const asset = list && list.ASSETS[d.assetListIndex];
      const t = asset && asset["X-INTERLUDE-TRACKING"];
      if (t) fire(t.events.complete);
    });
    hls.loadSource(url);
    hls.attachMedia(video);
    video.play().catch(() => {});
  }, sgai.master_url);
  const sgaiLog = async () => page.evaluate(() => `t=${document.getElementById("v").currentTime} paused=${document.getElementById("v").paused} ${window.sgai.log.join(" | ")}`);
  page.sgaiLog = sgaiLog;
  await until("interstitials playback to start", async () => {
    const fatal = await page.evaluate(() => window.fatal);
    if (fatal) throw new Error(`hls.js fatal error: ${fatal}`);
    return (await page.evaluate(() => document.getElementById("v").currentTime)) > 1;
  }, 60_000);
  console.log("hls.js is playing the interstitials session");
  const noFatal = async () => {
    const fatal = await page.evaluate(() => window.fatal);
    if (fatal) throw new Error(`hls.js fatal error: ${fatal}`);
  };
  const adTracking = await until("hls.js to start an interstitial ad", async () => {
    await noFatal();
    return page.evaluate(() => window.sgai.current);
  }, 180_000);
  const breakId = await page.evaluate(() => window.sgai.currentBreak);
  console.log(`interstitial ${breakId} started: ad ${adTracking.ad_instance_id} (${adTracking.creative_id})`);
  // The whole break plays: every asset of the list starts and ends, the interstitial ends once, and primary
  // content resumes and keeps playing.
  await until("the interstitial to end and primary content to resume", async () => {
    await noFatal();
    return page.evaluate((id) => {
      const log = window.sgai.log;
      const end = log.findIndex((l) => l.startsWith(`hlsInterstitialEnded ${id}`));
      return end >= 0 && log.slice(end).some((l) => l.startsWith("hlsInterstitialsPrimaryResumed"));
    }, breakId) || null;
  }, 120_000);
  const resumed = await page.evaluate(() => document.getElementById("v").currentTime);
  await sleep(4000);
  const later = await page.evaluate(() => document.getElementById("v").currentTime);
  if (!(later > resumed + 2)) throw new Error(`primary playback stalled after the interstitial (${resumed} -> ${later})`);
  console.log(`primary content resumes after the interstitial: ${resumed.toFixed(1)} s -> ${later.toFixed(1)} s`);
  const played = await page.evaluate((id) => ({
    list: window.sgai.lists[id],
    started: window.sgai.started[id] ?? [],
    ended: window.sgai.ended[id] ?? [],
    runs: window.sgai.log.filter((l) => l.startsWith(`hlsInterstitialStarted ${id}`)).length,
    limit: window.sgai.limits[id],
  }), breakId);
  // The pod then slate fill the planned break (X-PLAYOUT-LIMIT is the planned duration).
  const filled = played.list.ASSETS.reduce((sum, a) => sum + a.DURATION, 0);
  if (Math.abs(filled - played.limit) > 0.5) throw new Error(`assets fill ${filled} s of a ${played.limit} s break`);
  const every = played.list.ASSETS.map((_, i) => i).join(",");
  if (played.started.join(",") !== every || played.ended.join(",") !== every) {
    throw new Error(`assets started [${played.started}] and ended [${played.ended}], expected [${every}]`);
  }
  if (played.runs !== 1) throw new Error(`the interstitial started ${played.runs} times`);
  const kinds = played.list.ASSETS.map((a) => `${a["X-INTERLUDE-TRACKING"] ? "ad" : "slate"} ${a.DURATION} s`);
  console.log(`every asset of the ${played.limit} s break played once: ${kinds.join(" + ")}`);
  // Every ad of the break is counted, from the page's beacons alone (interstitial sessions fire none server-side).
  for (const asset of played.list.ASSETS) {
    const t = asset["X-INTERLUDE-TRACKING"];
    if (!t) continue;
    const counted = await until(`ad ${t.ad_instance_id}'s impression, start, quartiles and completion to be counted`, async () => {
      const r = await pollJson(`${sgaiBase}/v1/ads/${t.ad_instance_id}/events`, { headers: sgaiRead });
      if (!r) return null;
      const all = ["impression", "start", "firstQuartile", "midpoint", "thirdQuartile", "complete"];
      return all.every((e) => r.counted.includes(e)) ? r.counted : null;
    }, 60_000);
    console.log(`counted for interstitial ad ${t.ad_instance_id} (${t.creative_id}): ${counted.join(", ")}`);
  }
  if (pageErrors.length) throw new Error(`page errors: ${pageErrors.join("; ")}`);
} catch (e) {
  failed = true;
  console.error(`FAILED: ${e.message}`);
  for (const p of browser.contexts().flatMap((c) => c.pages())) {
    if (p.sgaiLog) console.error(`hls.js interstitials log: ${await p.sgaiLog().catch((x) => String(x))}`);
  }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
