// Reads the dash crate's stitched session MPDs (crates/dash/examples/session_mpds.rs) with the manifest parsers
// of three players, in Node: video.js's mpd-parser (what VHS plays), Shaka Player's DashParser and PeriodCombiner,
// and dash.js's MediaPlayer (manifest load and per-Period adapter, no media element). For each MPD — a TS and an
// fMP4 live channel before, during, after a break and once it left the window — it checks that the parser
// takes it without error and keeps one track per content rendition across the Periods, with the ad segments
// inside those tracks and no gap or overlap on the timeline.
//
//   node check.mjs DIR    (DIR holds index.json and the MPDs; check.sh makes them)
//
// Ends with "N passed, N failed".

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { parse as mpdParse } from 'mpd-parser';

const require = createRequire(import.meta.url);
const dir = process.argv[2];
if (!dir) {
  console.error('usage: node check.mjs DIR');
  process.exit(2);
}
const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'));
const MANIFEST_URL = 'https://ssai.example/s/S/manifest.mpd';
const AD_HOST = 'https://ssai.example/';

let passed = 0;
let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed += 1;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}\n     ${(e && e.stack) || e}`);
  }
}
function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}
function eq(a, b, msg) {
  const [x, y] = [JSON.stringify(a), JSON.stringify(b)];
  if (x !== y) throw new Error(`${msg}: ${x} != ${y}`);
}
const read = (e) => fs.readFileSync(path.join(dir, e.file), 'utf8');
// Ad Periods are in the MPD when the break is planned and the live edge has passed its start (the MPD says
// so: an ad Period id ends in _adN or _slateN).
const adPeriods = (text) => [...text.matchAll(/<Period id="([^"]*_(?:ad|slate)\d+)"/g)].map((m) => m[1]);

// ---- mpd-parser (video.js / VHS) --------------------------------------------------------------------------
function mpdParserPlaylists(manifest) {
  const audio = Object.values(manifest.mediaGroups.AUDIO.audio || {}).flatMap((g) => g.playlists);
  return { video: manifest.playlists, audio };
}

for (const e of index) {
  await check(`mpd-parser: ${e.file} parses into one playlist per content rendition`, () => {
    const text = read(e);
    const m = mpdParse(text, { manifestUri: MANIFEST_URL });
    const { video, audio } = mpdParserPlaylists(m);
    eq(video.length, e.video, 'video playlists');
    eq(audio.length, e.audio, 'audio playlists');
    const ads = adPeriods(text);
    for (const p of [...video, ...audio]) {
      const uris = p.segments.map((s) => s.resolvedUri);
      assert(uris.length > 0, `${p.attributes.NAME}: no segment`);
      assert(uris.every((u) => u && !u.includes('undefined')), `${p.attributes.NAME}: bad URI in ${uris}`);
      const fromAds = uris.filter((u) => u.startsWith(AD_HOST)).length;
      if (ads.length > 0) {
        assert(fromAds > 0, `${p.attributes.NAME}: the ad Periods ${ads} are not in this track`);
      }
      assert(fromAds < uris.length || e.phase === 'during', `${p.attributes.NAME}: a track of ads only`);
      // Periods follow each other: one discontinuity per Period boundary that has segments on both sides.
      const periods = (p.timelineStarts || p.attributes.timelineStarts).length;
      eq(p.discontinuityStarts.length, periods - 1, `${p.attributes.NAME}: discontinuities`);
    }
  });
}
for (const channel of [...new Set(index.map((e) => e.channel))]) {
  await check(`mpd-parser: ${channel} refreshes (before → during → after → later) position on one timeline`, () => {
    let previous;
    for (const e of index.filter((x) => x.channel === channel)) {
      const m = mpdParse(read(e), { manifestUri: MANIFEST_URL, previousManifest: previous });
      const { video, audio } = mpdParserPlaylists(m);
      eq(video.length, e.video, `${e.phase}: video playlists`);
      eq(audio.length, e.audio, `${e.phase}: audio playlists`);
      if (previous) {
        const before = mpdParserPlaylists(previous).video[0];
        const now = video[0];
        assert(now.mediaSequence >= before.mediaSequence, `${e.phase}: media sequence went back`);
      }
      previous = m;
    }
  });
}

// ---- Shaka Player ----------------------------------------------------------------------------------------
globalThis.window = globalThis;
globalThis.self = globalThis;
Object.defineProperty(globalThis, 'navigator', {
  value: { userAgent: 'node', platform: 'node', vendor: '' },
  configurable: true,
});
globalThis.document = { createElement: () => ({}), addEventListener() {}, removeEventListener() {} };
globalThis.getComputedStyle = () => ({});
const shaka = require('shaka-player/dist/shaka-player.dash-es2021.js');
shaka.polyfill.installAll();

async function shakaParse(text) {
  const bytes = Buffer.from(text, 'utf8');
  const data = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const errors = [];
  const net = {
    request(type, req) {
      const uri = req.uris[0];
      return shaka.util.AbortableOperation.completed({ uri, originalUri: uri, data, headers: {}, originalRequest: req });
    },
  };
  const iface = {
    networkingEngine: net,
    filter: async () => {},
    makeTextStreamsForClosedCaptions() {},
    onTimelineRegionAdded() {},
    onEvent() {},
    onError(err) { errors.push(err); },
    isLowLatencyMode: () => false,
    isAutoLowLatencyMode: () => false,
    enableLowLatencyMode() {},
    updateDuration() {},
    newDrmInfo() {},
    onManifestUpdated() {},
    getBandwidthEstimate: () => 1e6,
    onMetadata() {},
    disableStream() {},
    addFont() {},
  };
  const parser = new shaka.dash.DashParser();
  parser.configure(shaka.util.PlayerConfiguration.createDefault().manifest);
  // Shaka's warnings go to the console; they are collected and returned instead.
  const warnings = [];
  const warn = console.warn;
  console.warn = (...args) => warnings.push(args.join(' '));
  try {
    const manifest = await parser.start(MANIFEST_URL, iface);
    return { manifest, errors, warnings };
  } finally {
    console.warn = warn;
    await parser.stop();
  }
}

for (const e of index) {
  await check(`shaka: ${e.file} combines Periods into one stream per content rendition, without gaps`, async () => {
    const text = read(e);
    const { manifest, errors, warnings } = await shakaParse(text);
    eq(errors.map((x) => x.code), [], 'errors');
    eq(warnings, [], 'warnings');
    eq(manifest.variants.length, Math.max(e.video, 1) * Math.max(e.audio, 1), 'variants');
    const streams = new Set();
    for (const v of manifest.variants) {
      if (v.video) streams.add(v.video);
      if (v.audio) streams.add(v.audio);
    }
    eq(streams.size, e.video + e.audio, 'streams');
    const ads = adPeriods(text);
    for (const s of streams) {
      await s.createSegmentIndex();
      const refs = [...s.segmentIndex];
      assert(refs.length > 0, `stream ${s.id}: no segment`);
      for (let i = 1; i < refs.length; i += 1) {
        const gap = refs[i].startTime - refs[i - 1].endTime;
        assert(Math.abs(gap) < 0.05, `stream ${s.id}: ${gap.toFixed(3)} s between ${refs[i - 1].getUris()[0]} and ${refs[i].getUris()[0]}`);
      }
      const fromAds = refs.filter((r) => r.getUris()[0].startsWith(AD_HOST)).length;
      if (ads.length > 0) assert(fromAds > 0, `stream ${s.id}: no ad segment`);
    }
  });
}

// ---- dash.js ------------------------------------------------------------------------------------------------
globalThis.MediaSource = class {
  static isTypeSupported() { return true; }
  addSourceBuffer() {}
  addEventListener() {}
  removeEventListener() {}
};
let served = '';
globalThis.XMLHttpRequest = class {
  open(method, url) { this.url = url; this.readyState = 1; }
  setRequestHeader() {}
  overrideMimeType() {}
  abort() {}
  getAllResponseHeaders() { return 'content-type: application/dash+xml\r\n'; }
  getResponseHeader(n) { return n.toLowerCase() === 'content-type' ? 'application/dash+xml' : null; }
  send() {
    // Only the MPD is served: media requests (dash.js preloads on) stay pending.
    if (!this.url.endsWith('.mpd')) return;
    setTimeout(() => {
      const body = served;
      Object.assign(this, { readyState: 4, status: 200, statusText: 'OK', responseURL: this.url, response: body, responseText: body });
      const ev = { loaded: body.length, total: body.length, lengthComputable: true, target: this };
      this.onloadstart?.(ev);
      this.onprogress?.(ev);
      this.onload?.(ev);
      this.onloadend?.(ev);
      this.onreadystatechange?.(ev);
    }, 0);
  }
};
require(path.join(path.dirname(new URL(import.meta.url).pathname), 'node_modules/dashjs/dist/modern/umd/dash.mediaplayer.debug.js'));
const { dashjs } = globalThis;

function dashjsStreams(text) {
  served = text;
  return new Promise((resolve, reject) => {
    const player = dashjs.MediaPlayer().create();
    player.updateSettings({ debug: { logLevel: 0 } });
    player.initialize();
    const timer = setTimeout(() => reject(new Error('no MANIFEST_LOADED in 10 s')), 10_000);
    player.on(dashjs.MediaPlayer.events.ERROR, (ev) => {
      clearTimeout(timer);
      reject(new Error(`dash.js error: ${JSON.stringify(ev.error || ev)}`));
    });
    player.on(dashjs.MediaPlayer.events.MANIFEST_LOADED, (ev) => {
      clearTimeout(timer);
      try {
        const adapter = player.getDashAdapter();
        const streams = adapter.getStreamsInfo(ev.data).map((s) => ({
          id: s.id,
          start: s.start,
          duration: s.duration,
          sets: ['video', 'audio'].flatMap((type) => adapter.getAllMediaInfoForType(s, type, ev.data)).map((i) => ({
            id: i.id,
            type: i.type,
            lang: i.lang,
            reps: (i.bitrateList || []).map((b) => b.id),
          })),
        }));
        resolve(streams);
      } catch (err) {
        reject(err);
      } finally {
        setTimeout(() => player.reset(), 0);
      }
    });
    player.attachSource(MANIFEST_URL);
    player.preload();
  });
}

for (const e of index) {
  await check(`dash.js: ${e.file} Periods follow each other with the content's AdaptationSet and Representation ids`, async () => {
    const streams = await dashjsStreams(read(e));
    eq(streams.length, e.periods, 'Periods');
    const first = streams[0].sets.map((s) => [s.id, s.type, s.lang, s.reps]);
    eq(first.filter((s) => s[1] === 'video').reduce((n, s) => n + s[3].length, 0), e.video, 'video representations');
    eq(first.filter((s) => s[1] === 'audio').reduce((n, s) => n + s[3].length, 0), e.audio, 'audio representations');
    for (let i = 1; i < streams.length; i += 1) {
      const [a, b] = [streams[i - 1], streams[i]];
      assert(Math.abs(a.start + a.duration - b.start) < 0.001, `${a.id} ends at ${a.start + a.duration}, ${b.id} starts at ${b.start}`);
      eq(b.sets.map((s) => [s.id, s.type, s.lang, s.reps]), first, `Period ${b.id}`);
    }
  });
}

console.log(`\n${passed} passed, ${failed} failed`);
// dash.js and Shaka leave timers behind.
process.exit(failed === 0 ? 0 : 1);
