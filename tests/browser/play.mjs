// Playback driver of the browser tests (Chromium as chromium.mjs launches it): plays each JSON
// case of stdin in a new page of tests/browser/player.html, one JSON result per stdout line.
//
// A case: {page, player: "shaka"|"hls.js"|"dashjs", manifest, keys: {kidHex: keyHex},
//          license: a ClearKey license server's URL (hls.js: drmSystems licenseUrl),
//          redirect: {fromSuffix, to} (a request whose URL ends with fromSuffix goes to `to`),
//          advance: seconds of media to play, timeout: seconds,
//          thumbnails: optional media times whose thumbnails are asked of the player at the end,
//          cmcd: true (optional) to send CMCD in the query of every request,
//          optional: headers: [{urlPrefix, set: {name: value}}] (added to matching requests,
//          as a CDN adds CloudFront-Viewer-Country), hosts: {name: address} (requests to a
//          host name go to that address, port kept: CDN host names without name lookups),
//          config: {shaka, hlsjs, dashjs} (player settings), timeline: true (sample media
//          time against the wall clock), responses: true (every response's URL and status,
//          the page's HTTP cache off so that none is missed), refuse_codecs: [prefix] (the
//          page says it cannot decode those codecs: MediaSource.isTypeSupported,
//          canPlayType, mediaCapabilities, EME capabilities), log: N (keep the page's last N
//          console lines of any level, with their epoch ms: a player's debug log),
//          media_after: a URL prefix (a steering server): requests to `hosts` other than the
//          manifest wait until the first response under that prefix has arrived,
//          steering_late: {prefix, during, after, until}: the first answer under prefix (a
//          steering server) comes while the first media segment with `during` in its URL is
//          in flight; requests with `after` in their URL wait for a console line with `until`}
// A result: {ok, current_time, frames: [first, last], fatal, errors, video_error, timed_out,
//            media_keys (EME in use), seconds, console; thumbnails: one per time, when asked;
//            timeline (when asked): [[epoch ms, currentTime], ...] one per poll;
//            responses (when asked): [[url, status], ...] in the order they came;
//            log (when asked): the last N console lines}
//
// Localized releases (optional case fields, acted on once the media has played `advance`):
//   list_tracks: true          -> result.tracks: {audio: [...], text: [...]} as the player lists
//   select_audio: {language, role?}, switch_advance: seconds, switch_expect: URL part
//                              -> result.switch: {selected, start, current_time, requests
//                                 (URLs fetched after the switch), tracks}; it waits (to the
//                                 case's timeout) for a request with switch_expect in it
//   select_text: {language, role?}, cue_times: [seconds], cue_wait: seconds
//                              -> result.cues: [{time, seek_time, texts}] (the cues showing
//                                 after a paused seek to each time)
import { serveCases } from './chromium.mjs';

const POLL_MS = 200;
// After a fatal error, keep listening this long: the media element's own error often follows.
const SETTLE_MS = 500;
// After the media element's error without a fatal one, wait this long at most for the player's
// verdict: hls.js first tries to recover (resets the MediaSource, appends again) and declares
// the error fatal only when that fails, which takes longer than SETTLE_MS on a loaded machine.
const VERDICT_MS = 10000;

async function play(context, c) {
  const started = Date.now();
  const page = await context.newPage();
  const consoleLines = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && consoleLines.length < 20) consoleLines.push(m.text().slice(0, 300));
  });
  page.on('pageerror', (e) => consoleLines.length < 20 && consoleLines.push(String(e).slice(0, 300)));
  const log = [];
  if (c.log) {
    page.on('console', (m) => {
      log.push(`${Date.now()} [${m.type()}] ${m.text().slice(0, 400)}`);
      if (log.length > c.log) log.shift();
    });
  }
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('response', (r) => r.status() >= 400 && consoleLines.length < 20
    && consoleLines.push(`HTTP ${r.status()} ${r.url()}`));
  const responses = [];
  if (c.responses) page.on('response', (r) => responses.push([r.url(), r.status()]));
  // A case that checks what a switch fetches must see every fetch: routing turns the page's
  // HTTP cache off (an earlier case may have cached the same release's segments).
  if (c.switch_expect || c.responses) await page.route('**/*', (route) => route.continue());
  if (c.redirect) {
    await page.route((url) => url.pathname.endsWith(c.redirect.fromSuffix),
      (route) => route.continue({ url: c.redirect.to }));
  }
  if (c.hosts) {
    await page.route((url) => Object.hasOwn(c.hosts, url.hostname), (route) => {
      const url = new URL(route.request().url());
      url.hostname = c.hosts[url.hostname];
      return route.continue({ url: url.href });
    });
  }
  for (const added of c.headers || []) {
    await page.route((url) => url.href.startsWith(added.urlPrefix),
      (route) => route.continue({ headers: { ...route.request().headers(), ...added.set } }));
  }
  if (c.media_after) await holdMedia(page, c);
  if (c.steering_late) await steerLate(page, c);
  if (c.refuse_codecs) await page.addInitScript(refuseCodecs, c.refuse_codecs);
  const timeline = [];
  try {
    await page.goto(c.page, { timeout: c.timeout * 1000 });
    // Not awaited: a player that never settles its load() is caught by the deadline below.
    await page.evaluate((x) => { window.cdnpackPlay(x); }, c);
    const deadline = started + c.timeout * 1000;
    let first = null;
    let last = null;
    let fatalAt = null;
    for (;;) {
      const s = await page.evaluate(() => window.cdnpackSample());
      if (c.timeline) timeline.push([Date.now(), s.current_time]);
      if (s.frames > 0 && first === null) first = s.frames;
      last = s;
      const failed = s.fatal !== null || s.video_error !== null;
      if (failed && fatalAt === null) fatalAt = Date.now();
      const advanced = s.current_time >= c.advance && s.frames > (first ?? 0);
      const settled = fatalAt !== null
        && Date.now() - fatalAt >= (s.fatal !== null ? SETTLE_MS : VERDICT_MS);
      if (advanced || settled || Date.now() > deadline) {
        const timedOut = !advanced && fatalAt === null;
        const result = {
          ok: advanced && !failed, current_time: s.current_time, frames: [first ?? 0, s.frames],
          fatal: s.fatal, errors: s.errors, video_error: s.video_error, timed_out: timedOut,
          media_keys: s.media_keys, console: consoleLines,
          ...(c.timeline ? { timeline } : {}),
        };
        if (c.thumbnails) {
          result.thumbnails = await page.evaluate(
            ([player, times]) => window.cdnpackThumbnails(player, times), [c.player, c.thumbnails]);
        }
        if (result.ok) await localized(page, c, result, requests, deadline);
        if (c.responses) result.responses = responses;
        if (c.log) result.log = log;
        result.seconds = (Date.now() - started) / 1000;
        return result;
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  } finally {
    await page.close();
  }
}

// A steering server that answers before the CDNs deliver anything but the manifest: a player
// that loads the manifest's default pathway while its first steering request is out (hls.js;
// RFC 8216bis lets it) sees the steering answer first, whatever the machine's load. Registered
// after the `hosts` route, so it runs first and hands the request on to it.
async function holdMedia(page, c) {
  const answered = signal();
  const settles = (r) => r.url().startsWith(c.media_after) && answered.resolve();
  page.on('requestfinished', settles);
  page.on('requestfailed', settles);
  await page.route((url) => Object.hasOwn(c.hosts || {}, url.hostname) && url.href !== c.manifest,
    async (route) => { await answered.promise; return route.fallback(); });
}

// A promise and the function that settles it: one moment the routes above wait for.
function signal() {
  let resolve;
  const promise = new Promise((r) => { resolve = r; });
  return { promise, resolve };
}

// The steering server's first answer lands while a media segment is loading, every time, and
// the player has that segment before the new pathway's playlists: the steering request waits for
// the first segment request whose URL has `steering_late.during` in it, every segment's response
// for the steering answer, and requests with `steering_late.after` in their URL for the page's
// console to say `steering_late.until` (the player's log of that segment's arrival: a response
// leaving the network is not yet the page handling it).
async function steerLate(page, c) {
  const { prefix, during, after, until } = c.steering_late;
  const asked = signal();
  const answered = signal();
  const delivered = signal();
  const settles = (r) => r.url().startsWith(prefix) && answered.resolve();
  page.on('requestfinished', settles);
  page.on('requestfailed', settles);
  page.on('console', (m) => m.text().includes(until) && delivered.resolve());
  await page.route((url) => url.href.startsWith(prefix),
    async (route) => { await asked.promise; return route.fallback(); });
  await page.route((url) => url.href.includes(after) && !/\.(m4s|ts)$/.test(url.pathname),
    async (route) => { await delivered.promise; return route.fallback(); });
  await page.route((url) => /\.(m4s|ts)$/.test(url.pathname), async (route) => {
    if (route.request().url().includes(during)) asked.resolve();
    await answered.promise;
    return route.fallback();
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Runs in the page before any of its scripts: every way a player asks whether a codec can
// be decoded answers no for the refused ones (hls.js and dash.js ask MediaSource, shaka-player
// mediaCapabilities.decodingInfo, EME requestMediaKeySystemAccess with the content types).
function refuseCodecs(refused) {
  const refuses = (type) => refused.some((codec) => String(type).includes(codec));
  for (const name of ['MediaSource', 'ManagedMediaSource', 'WebKitMediaSource']) {
    const source = window[name];
    if (!source || !source.isTypeSupported) continue;
    const original = source.isTypeSupported.bind(source);
    source.isTypeSupported = (type) => !refuses(type) && original(type);
  }
  const canPlay = HTMLMediaElement.prototype.canPlayType;
  HTMLMediaElement.prototype.canPlayType = function (type) {
    return refuses(type) ? '' : canPlay.call(this, type);
  };
  if (navigator.mediaCapabilities) {
    const decodingInfo = navigator.mediaCapabilities.decodingInfo.bind(navigator.mediaCapabilities);
    navigator.mediaCapabilities.decodingInfo = (config) => {
      const types = [config.video && config.video.contentType,
        config.audio && config.audio.contentType];
      if (types.some((t) => t && refuses(t))) {
        return Promise.resolve({ supported: false, smooth: false, powerEfficient: false });
      }
      return decodingInfo(config);
    };
  }
  if (navigator.requestMediaKeySystemAccess) {
    const request = navigator.requestMediaKeySystemAccess.bind(navigator);
    navigator.requestMediaKeySystemAccess = (system, configs) => {
      // A configuration asking only for refused video codecs is dropped, as a CDM without
      // them would decline it.
      const kept = [];
      for (const config of configs) {
        const video = config.videoCapabilities || [];
        const allowed = video.filter((cap) => !refuses(cap.contentType));
        if (video.length && !allowed.length) continue;
        kept.push({ ...config, ...(video.length ? { videoCapabilities: allowed } : {}) });
      }
      return kept.length ? request(system, kept)
        : Promise.reject(new DOMException('refused codecs', 'NotSupportedError'));
    };
  }
}
const TEXT_SETTLE_MS = 1000;

async function localized(page, c, result, requests, deadline) {
  if (c.list_tracks) result.tracks = await page.evaluate(() => window.cdnpackTracks());
  if (c.select_audio) {
    const start = (await page.evaluate(() => window.cdnpackSample())).current_time;
    requests.length = 0;
    const selected = await page.evaluate((w) => window.cdnpackSelect('audio', w), c.select_audio);
    let s = null;
    for (;;) {
      s = await page.evaluate(() => window.cdnpackSample());
      const fetched = !c.switch_expect || requests.some((u) => u.includes(c.switch_expect));
      if ((s.current_time >= start + (c.switch_advance ?? 3) && fetched)
          || Date.now() > deadline) break;
      await sleep(POLL_MS);
    }
    result.switch = {
      selected, start, current_time: s.current_time, requests: [...requests],
      tracks: await page.evaluate(() => window.cdnpackTracks()), fatal: s.fatal,
    };
  }
  if (c.select_text) {
    const selected = await page.evaluate((w) => window.cdnpackSelect('text', w), c.select_text);
    // Play on a moment, as a viewer does after picking subtitles: shaka-player loses a text
    // switch made in the same instant as a seek of a paused video.
    await sleep(TEXT_SETTLE_MS);
    result.cues = [];
    for (const time of c.cue_times || []) {
      await page.evaluate((t) => {
        const video = document.getElementById('video');
        video.pause();
        video.currentTime = t;
      }, time);
      const until = Date.now() + (c.cue_wait ?? 3) * 1000;
      let texts = [];
      let seekTime = time;
      while (Date.now() < until) {
        await sleep(POLL_MS);
        const now = await page.evaluate(() => {
          const video = document.getElementById('video');
          return { seeking: video.seeking, time: video.currentTime,
                   texts: window.cdnpackActiveCues() };
        });
        seekTime = now.time;
        texts = now.texts;
        if (!now.seeking && texts.length) break;
      }
      result.cues.push({ time, seek_time: seekTime, texts, selected });
    }
  }
}

await serveCases(play);
