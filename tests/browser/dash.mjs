// Headless Chromium plays a stitched DASH session (started by scripts/browser-test.sh against a running demo):
// a fresh session's MPD (`/s/{session}/manifest.mpd`, the origin's live DASH with each break split into ad and
// slate Periods) is played by the named player across a break, through the ad Period and back into content,
// and that ad's server-side beacons (fired as the player fetches the ad's segments) are counted by the
// pipeline: impression, start, the quartiles and complete, read back through GET /v1/ads/{ad}/events with the
// read token.
//
//   node tests/browser/dash.mjs http://127.0.0.1:PORT dashjs|shaka [CHANNEL] [READ_TOKEN]
//
// CHANNEL is `live1` by default: content and ads are MPEG-2 TS (H.264/AAC, `video/mp2t`); Debian's chromium
// accepts `video/mp2t` in MSE, so dash.js appends the segments as they are; Shaka Player transmuxes TS to
// fMP4 itself when MSE says no (as hls.js does). The page checks the MSE answer and says which path was
// taken. `live1-cmaf` is the same channel over the CMAF origin: content, ads and slate are fMP4 with video and
// audio in separate AdaptationSets (the ads' and slate's tracks cut out of the muxed creatives by the
// server), which both players append to MSE as they are.
import { chromium } from "playwright-core";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const [base, which = "dashjs", channel = "live1", token = process.env.INTERLUDE_READ_TOKEN] = process.argv.slice(2);
if (!base || !["dashjs", "shaka"].includes(which)) {
  console.error("usage: node dash.mjs http://127.0.0.1:PORT dashjs|shaka [CHANNEL] [READ_TOKEN]");
  process.exit(2);
}
const cmaf = channel.endsWith("-cmaf");
const read = token ? { authorization: `Bearer ${token}` } : {};

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
// A server short of CPU sheds reads with 503 and Retry-After (its load shedding, working as meant): asked
// again after the pause it names, up to a minute in all.
async function json(url, headers = {}) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = await fetch(url, { headers });
    if (r.status === 503 && Date.now() < deadline) {
      await sleep(1000 * Math.min(5, Number(r.headers.get("retry-after")) || 1));
      continue;
    }
    if (!r.ok) throw Object.assign(new Error(`GET ${url}: ${r.status} ${await r.text()}`), { status: r.status });
    return r.json();
  }
}
// The server sheds reads before playlists when it is loaded (503 + Retry-After, its admission control): a
// poll takes that as "not yet".
const unlessShed = (e) => {
  if (e.status === 503) return null;
  throw e;
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required",
  ],
});
let failed = false;
let page;
const refused = [];
const name = `${which === "dashjs" ? "dash.js" : "Shaka Player"} on ${channel}`;
try {
  const res = await fetch(`${base}/v1/sessions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ channel, viewer: { device: "desktop", platform: "web" } }),
  });
  if (!res.ok) throw new Error(`POST /v1/sessions: ${res.status} ${await res.text()}`);
  const created = await res.json();
  const mpdUrl = `${base}/s/${created.session_id}/manifest.mpd`;
  // A "HeadlessChrome" user agent is bot traffic (IAB/MRC general invalid traffic) and its beacons are
  // quarantined, rightly: this page reports as the desktop browser it stands for.
  page = await browser.newPage({
    userAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",
  });
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  // Failed and refused fetches, for the log on failure: a stall is most often a segment the server refused.
  const at = () => new Date().toISOString().slice(11, 23);
  page.on("response", (r) => { if (r.status() >= 400) refused.push(`${at()} ${r.status()} ${r.url()}`); });
  page.on("requestfailed", (r) => refused.push(`${at()} failed ${r.failure()?.errorText} ${r.url()}`));
  await page.setContent(`<!doctype html><video id="v" muted autoplay playsinline width="640"></video>`);
  const type = cmaf ? 'video/mp4; codecs="avc1.4d401e"' : 'video/mp2t; codecs="avc1.4d401e,mp4a.40.2"';
  const mse = await page.evaluate((t) => MediaSource.isTypeSupported(t), type);
  console.log(`${name}: chromium's MSE ${mse ? "accepts" : "refuses"} ${type}`);
  // The play position and buffered ranges every 2 s, for the log on failure.
  await page.evaluate(() => {
    window.run = { fatal: null, log: [], periods: [] };
    const v = document.getElementById("v");
    setInterval(() => {
      const ranges = [];
      for (let i = 0; i < v.buffered.length; i++) ranges.push(`${v.buffered.start(i).toFixed(1)}-${v.buffered.end(i).toFixed(1)}`);
      window.run.log.push(`t=${v.currentTime.toFixed(1)} buffered=${ranges.join(",")}`);
    }, 2000);
  });
  if (which === "dashjs") {
    await page.addScriptTag({ path: require.resolve("dashjs") /* exports: require → dist/modern/umd/dash.all.min.js */ });
    await page.evaluate((url) => {
      const s = window.run;
      const video = document.getElementById("v");
      const player = dashjs.MediaPlayer().create();
      // MediaCapabilities.decodingInfo answers no for any `video/mp2t` type in chromium, where
      // MediaSource.isTypeSupported answers yes: dash.js asks the latter when told so.
      player.updateSettings({
        debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING },
        streaming: { capabilities: { useMediaCapabilitiesApi: false } },
      });
      player.on(dashjs.MediaPlayer.events.ERROR, (e) => {
        const err = e.error || {};
        s.log.push(`error ${err.code} ${err.message}`);
        s.fatal = `${err.code}: ${err.message}`;
      });
      player.on(dashjs.MediaPlayer.events.PERIOD_SWITCH_COMPLETED, (e) => {
        const id = e.toStreamInfo && e.toStreamInfo.id;
        s.periods.push({ id, at: video.currentTime });
        s.log.push(`period ${id} t=${video.currentTime.toFixed(1)}`);
      });
      player.on(dashjs.MediaPlayer.events.PLAYBACK_STALLED, () => s.log.push(`stalled t=${video.currentTime.toFixed(1)}`));
      player.initialize(video, url, true);
      window.player = player;
    }, mpdUrl);
  } else {
    await page.addScriptTag({ path: require.resolve("shaka-player/dist/shaka-player.compiled.js") });
    await page.evaluate(async (url) => {
      const s = window.run;
      shaka.polyfill.installAll();
      const video = document.getElementById("v");
      const player = new shaka.Player();
      // A live player's retries: Shaka may ask for the first content segment after a break a moment before
      // the origin has it (it buffers the ad Periods, whose creative segments are all there, up to the live
      // edge); the origin's 404 is then retried rather than fatal after Shaka's default 2 attempts.
      // ABR off: headless chromium without a GPU drops frames, and Shaka's ABR disables a stream that drops
      // more than 15 % ("Dropped frame ratio exceeded threshold"), which is not what this page tests.
      player.configure({
        abr: { enabled: false },
        streaming: { retryParameters: { maxAttempts: 6, baseDelay: 1000, backoffFactor: 1.5, fuzzFactor: 0 } },
      });
      await player.attach(video);
      player.addEventListener("buffering", (e) => s.log.push(`buffering=${e.buffering} t=${video.currentTime.toFixed(1)}`));
      player.addEventListener("error", (e) => {
        s.log.push(`error ${e.detail.code} ${e.detail.severity} ${JSON.stringify(e.detail.data).slice(0, 300)} t=${video.currentTime.toFixed(1)} at ${new Date().toISOString()}`);
        if (e.detail.severity === shaka.util.Error.Severity.CRITICAL) s.fatal = `shaka error ${e.detail.code}`;
      });
      window.player = player;
      try {
        await player.load(url);
      } catch (e) {
        s.fatal = `load: ${e.code ?? e}`;
      }
      video.play().catch(() => {});
    }, mpdUrl);
  }
  const state = () => page.evaluate(() => ({
    t: document.getElementById("v").currentTime,
    paused: document.getElementById("v").paused,
    fatal: window.run.fatal,
    log: window.run.log.slice(-40),
  }));
  const noFatal = async () => {
    const s = await state();
    if (s.fatal) throw new Error(`${name} fatal error: ${s.fatal}`);
    return s;
  };
  await until(`${name} playback to start`, async () => (await noFatal()).t > 1, 60_000);
  console.log(`${name} is playing the stitched DASH session ${created.session_id}`);

  // The first ad of the first break that starts after playback started (the ads of a break the session
  // joined mid-way are in the past for the player).
  const tracking = () => json(created.tracking_url);
  const seen = new Set((await tracking()).avails.map((a) => a.avail_id));
  const ad = await until("a new break with ads in the session", async () => {
    await noFatal();
    const doc = await tracking().catch(unlessShed);
    const avail = doc && doc.avails.find((a) => !seen.has(a.avail_id) && a.ads.length > 0);
    return avail ? avail.ads[0] : null;
  }, 180_000);
  console.log(`break reached: ad ${ad.ad_instance_id} (${ad.creative_id}, ${ad.duration_secs} s)`);
  const all = ["impression", "start", "firstQuartile", "midpoint", "thirdQuartile", "complete"];
  const counted = await until(`the ad's ${all.join(", ")} to be counted`, async () => {
    await noFatal();
    const r = await json(`${base}/v1/ads/${ad.ad_instance_id}/events`, read).catch(unlessShed);
    return r && all.every((e) => r.counted.includes(e)) ? r.counted : null;
  }, 180_000);
  console.log(`counted for the ad: ${counted.join(", ")}`);
  if (token) {
    const open = await fetch(`${base}/v1/ads/${ad.ad_instance_id}/events`);
    if (open.status !== 401) throw new Error(`the ad's events without the read token: ${open.status}, expected 401`);
  }

  // Through the break and back into content: the play position (seconds since the MPD's
  // availabilityStartTime, for both players) passes the break's end and keeps going.
  const mpd = await (await fetch(mpdUrl)).text();
  const ast = Date.parse(/availabilityStartTime="([^"]+)"/.exec(mpd)?.[1] ?? "");
  if (Number.isNaN(ast)) throw new Error(`no availabilityStartTime in the session MPD:\n${mpd}`);
  const avail = (await tracking()).avails.find((a) => a.ads.some((x) => x.ad_instance_id === ad.ad_instance_id));
  const breakSecs = avail.duration_secs ?? avail.planned_duration_secs;
  const breakEnd = (Date.parse(avail.start_time) - ast) / 1000 + breakSecs;
  if (!Number.isFinite(breakEnd)) throw new Error(`break without a start time or duration: ${JSON.stringify(avail)}`);
  const pastBreak = await until(`${name} to play past the break's end (${breakEnd.toFixed(1)} s)`, async () => {
    const s = await noFatal();
    return s.t > breakEnd + 2 ? s.t : null;
  }, 120_000);
  console.log(`${name} played through the ${breakSecs} s break into content: position ${pastBreak.toFixed(1)} s, break ends at ${breakEnd.toFixed(1)} s`);
  const before = (await noFatal()).t;
  await sleep(4000);
  const after = (await noFatal()).t;
  if (!(after > before + 2)) throw new Error(`playback stalled after the break (${before} -> ${after})`);
  console.log(`playback continues after the break: ${before.toFixed(1)} s -> ${after.toFixed(1)} s`);
  const periods = await page.evaluate(() => window.run.periods);
  if (periods.length) console.log(`${name} Period switches: ${periods.map((p) => `${p.id}@${p.at.toFixed(1)}`).join(" -> ")}`);
  if (pageErrors.length) throw new Error(`page errors: ${pageErrors.join("; ")}`);
} catch (e) {
  failed = true;
  console.error(`FAILED (${name}): ${e.message}`);
  if (page) {
    const log = await page.evaluate(() => {
      const v = document.getElementById("v");
      const ranges = [];
      for (let i = 0; i < v.buffered.length; i++) ranges.push(`${v.buffered.start(i).toFixed(1)}-${v.buffered.end(i).toFixed(1)}`);
      return [...((window.run && window.run.log) || []), `at t=${v.currentTime.toFixed(1)} paused=${v.paused} buffered=${ranges.join(",")}`];
    }).catch((x) => [String(x)]);
    console.error(`${name} log: ${(log || []).join(" | ")}`);
    if (refused.length) console.error(`refused or failed requests (last 30 of ${refused.length}):\n${refused.slice(-30).join("\n")}`);
  }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
