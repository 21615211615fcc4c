// Headless Chromium against a running Interlude demo (started by scripts/browser-test.sh): hls.js plays a
// fresh session of the CMAF (fragmented MP4) channel `live1-cmaf` across an ad break, switching init segments
// (EXT-X-MAP) into the fMP4 ad and back, and that ad's beacons are counted by the pipeline (checked through
// GET /v1/ads/{ad_instance_id}/events). With the origin's URL, dash.js also plays the origin's CMAF MPD
// (separate video and audio tracks: dash.js plays no muxed Representation) for a few seconds without an error.
// The stitcher's DASH sessions are not CMAF yet.
//
//   node tests/browser/cmaf.mjs http://127.0.0.1:PORT [channel] [http://ORIGIN:PORT]
import { chromium } from "playwright-core";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const base = process.argv[2];
const channel = process.argv[3] ?? "live1-cmaf";
const origin = process.argv[4];
if (!base) {
  console.error("usage: node cmaf.mjs http://127.0.0.1:PORT [channel]");
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
  const created = await (await fetch(`${base}/v1/sessions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ channel, viewer: { device: "desktop", platform: "web" } }),
  })).json();
  if (!created.master_url) throw new Error(`no session: ${JSON.stringify(created)}`);
  const player = await browser.newPage();
  const errors = [];
  player.on("pageerror", (e) => errors.push(String(e)));
  await player.setContent(`<!doctype html><video id="v" muted autoplay playsinline width="640"></video>`);
  await player.addScriptTag({ path: require.resolve("hls.js/dist/hls.min.js") });
  await player.evaluate((url) => {
    window.fatal = null;
    window.log = [];
    // Init segments hls.js loaded, in order: the content's, the ad's, the content's again.
    window.inits = [];
    const video = document.getElementById("v");
    const hls = new Hls({ lowLatencyMode: false });
    hls.on(Hls.Events.ERROR, (_, d) => {
      window.log.push(`${d.type} ${d.details} fatal=${d.fatal}`);
      if (d.fatal) window.fatal = `${d.type}: ${d.details}`;
    });
    hls.on(Hls.Events.FRAG_LOADED, (_, d) => {
      const init = d.frag.initSegment && d.frag.initSegment.url;
      if (init && window.inits[window.inits.length - 1] !== init) window.inits.push(init);
    });
    hls.loadSource(url);
    hls.attachMedia(video);
    video.play().catch(() => {});
  }, created.master_url);
  const noFatal = async () => {
    const fatal = await player.evaluate(() => window.fatal);
    if (fatal) throw new Error(`hls.js fatal error: ${fatal} (${await player.evaluate(() => window.log.join(" | "))})`);
  };
  await until("playback to start", async () => {
    await noFatal();
    return (await player.evaluate(() => document.getElementById("v").currentTime)) > 1;
  }, 30_000);
  console.log(`hls.js is playing the stitched CMAF stream (${channel})`);
  // The first ad of the first break that starts after playback started, then its beacons.
  // A busy server answers 503 "overloaded" (load shedding): asked again on the next poll.
  const tracking = async () => {
    const response = await fetch(created.tracking_url);
    return response.ok ? response.json() : null;
  };
  const seen = new Set((await until("the tracking document", tracking, 30_000)).avails.map((a) => a.avail_id));
  const ad = await until("a new break with ads in the session", async () => {
    await noFatal();
    const t = await tracking();
    const avail = t && t.avails.find((a) => !seen.has(a.avail_id) && a.ads.length > 0);
    return avail ? avail.ads[0] : null;
  }, 180_000);
  console.log(`break reached: ad ${ad.ad_instance_id} (${ad.creative_id}, ${ad.duration_secs} s)`);
  const counted = await until("the ad's impression and completion to be counted", async () => {
    await noFatal();
    const response = await fetch(`${base}/v1/ads/${ad.ad_instance_id}/events`);
    if (!response.ok) return null;
    const r = await response.json();
    return r.counted.includes("impression") && r.counted.includes("complete") ? r.counted : null;
  }, 180_000);
  console.log(`counted for the ad: ${counted.join(", ")}`);
  // Back in the content: its init segment loaded again after an ad's (or the slate's). The session may have
  // joined mid-break, its first init segment then being the ad's.
  const inits = await until("the content's init segment after the break", async () => {
    await noFatal();
    const list = await player.evaluate(() => window.inits);
    const content = (u) => u.includes(`/live/${channel}/`);
    return list.some((u, i) => !content(u) && list.slice(i + 1).some(content)) ? list : null;
  }, 60_000).catch(async (e) => {
    throw new Error(`${e.message}; loaded: ${(await player.evaluate(() => window.inits)).join(" -> ")}`);
  });
  console.log(`init segments, in order: ${inits.map((u) => u.replace(/^https?:\/\/[^/]+/, "")).join(" -> ")}`);
  const before = await player.evaluate(() => document.getElementById("v").currentTime);
  await sleep(3000);
  const after = await player.evaluate(() => document.getElementById("v").currentTime);
  if (!(after > before)) throw new Error(`playback stalled after the ad (${before} -> ${after})`);
  console.log(`playback continues after the ad: ${before.toFixed(1)} s -> ${after.toFixed(1)} s`);
  const nonFatal = await player.evaluate(() => window.log);
  if (nonFatal.length) console.log(`hls.js non-fatal errors: ${nonFatal.join(" | ")}`);
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  await player.close();
  if (origin) {
    const mpd = `${origin}/live/${channel}/manifest.mpd`;
    const page = await browser.newPage();
    await page.setContent(`<!doctype html><video id="v" muted autoplay playsinline width="640"></video>`);
    await page.addScriptTag({ path: require.resolve("dashjs") });
    await page.evaluate((url) => {
      window.dashErrors = [];
      const p = dashjs.MediaPlayer().create();
      p.on("error", (e) => window.dashErrors.push(JSON.stringify(e.error).slice(0, 300)));
      p.initialize(document.getElementById("v"), url, true);
    }, mpd);
    const position = () => page.evaluate(() => document.getElementById("v").currentTime);
    const dashFailed = async () => {
      const e = await page.evaluate(() => window.dashErrors);
      if (e.length) throw new Error(`dash.js on ${mpd}: ${e.join(" | ")}`);
    };
    const start = await until("dash.js to start the origin's CMAF MPD", async () => {
      await dashFailed();
      const t = await position();
      return t > 0 ? t : null;
    }, 30_000);
    await until("dash.js to play 4 s of it", async () => {
      await dashFailed();
      return (await position()) > start + 4;
    }, 30_000);
    console.log(`dash.js plays the origin's CMAF MPD (video and audio AdaptationSets): ${mpd}`);
  }
} catch (e) {
  console.error(`FAILED: ${e.message}`);
  failed = true;
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
