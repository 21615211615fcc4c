// Headless Chromium against a running Interlude (started by scripts/browser-test.sh):
// 1. the dashboard connects, shows live numbers, and they change while the load generator runs
//    (screenshot: target/dashboard.png);
// 2. hls.js plays a fresh session's stitched stream across an ad break, and that ad's beacons are counted by
//    the pipeline (checked through GET /v1/ads/{ad_instance_id}/events).
import { chromium } from "playwright-core";
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";

const require = createRequire(import.meta.url);
const base = process.argv[2];
const screenshot = process.argv[3] ?? "target/dashboard.png";
if (!base) {
  console.error("usage: node run.mjs http://127.0.0.1:PORT [screenshot.png]");
  process.exit(2);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
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

  // The first ad of the session's first decided break, then its beacons.
  const tracking = async () => (await fetch(created.tracking_url)).json();
  const ad = await until("a break with ads in the session", async () => {
    const t = await tracking();
    const avail = t.avails.find((a) => a.ads.length > 0);
    return avail ? avail.ads[0] : null;
  }, 180_000);
  console.log(`break reached: ad ${ad.ad_instance_id} (${ad.creative_id}, ${ad.duration_secs} s)`);
  const counted = await until("the ad's impression and completion to be counted", async () => {
    const fatal = await player.evaluate(() => window.fatal);
    if (fatal) throw new Error(`hls.js fatal error: ${fatal}`);
    const r = await (await fetch(`${base}/v1/ads/${ad.ad_instance_id}/events`)).json();
    return r.counted.includes("impression") && r.counted.includes("complete") ? r.counted : null;
  }, 180_000);
  console.log(`counted for the ad: ${counted.join(", ")}`);
  const before = await player.evaluate(() => document.getElementById("v").currentTime);
  await sleep(3000);
  const after = await player.evaluate(() => document.getElementById("v").currentTime);
  if (!(after > before)) throw new Error(`playback stalled after the ad (${before} -> ${after})`);
  console.log(`playback continues after the ad: ${before.toFixed(1)} s -> ${after.toFixed(1)} s`);
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
} catch (e) {
  failed = true;
  console.error(`FAILED: ${e.message}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
