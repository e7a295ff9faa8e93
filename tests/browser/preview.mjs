// The preview page's driver (Chromium as chromium.mjs launches it): opens `cdnpack preview`'s
// page and uses it as a release engineer does, through its buttons, the player's seek bar and
// what shows on screen; one JSON result per case.
//
// A case: {url (the page, with ?format=&from=&region=), advance: media seconds to play first,
//          timeout: seconds for the whole case,
//          region: optional region id picked in the page's region menu (then `advance` again),
//          audio: optional language whose button is clicked (audio_expect: a URL part the
//                 switch must fetch),
//          trick: optional rate clicked on the trick play buttons (then play again),
//          text: optional {language, forced}: the subtitle button clicked; cue: {time, text}
//                the cue that must show on the video after a paused seek to `time`,
//          hover: optional fraction of the seek bar to hover: its thumbnail must show,
//          screenshot: optional path of a PNG of the whole page, taken last (also when a step
//          failed)}
// A result: {ok, stage (where it stopped when not ok), current_time, frames: [first, last],
//            media_keys, errors (the page's), console, requests (every URL the page fetched),
//            pathways, iframes (what the page saw fetched), audio: {active, fetched, advanced},
//            cue: {text, seek_time}, thumbnail: {src, natural_width, time, box}, seconds}
import { serveCases } from './chromium.mjs';

const POLL_MS = 200;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function sample(page) {
  return page.evaluate(() => {
    const s = window.cdnpackPreview;
    const video = document.getElementById('video');
    const q = video.getVideoPlaybackQuality();
    return {
      ready: !!(s && s.ready), time: video.currentTime, frames: q.totalVideoFrames,
      media_keys: video.mediaKeys !== null, errors: s ? s.errors.slice(0, 10) : [],
      pathways: s ? s.pathways.slice() : [], iframes: s ? s.iframes.slice() : [],
      paused: video.paused,
    };
  });
}

// What the media element and the player were doing, for a failed case's message.
function diagnose() {
  const video = document.getElementById('video');
  const s = window.cdnpackPreview;
  const ranges = (r) => Array.from({ length: r.length }, (_, i) => [r.start(i), r.end(i)]);
  let buffered = null;
  try {
    buffered = s && s.player ? s.player.getBufferedInfo() : null;
  } catch (e) {
    buffered = String(e);
  }
  return { ready_state: video.readyState, network_state: video.networkState,
           paused: video.paused, buffered: ranges(video.buffered), player_buffered: buffered,
           events: s ? s.events.slice(-20) : [] };
}

// Until `check(sample)` holds or the deadline passes: the last sample, and whether it held.
async function until(page, deadline, check) {
  for (;;) {
    const s = await sample(page);
    if (check(s)) return [s, true];
    if (Date.now() > deadline || s.errors.some((e) => e.startsWith('shaka error')
        && !e.includes('severity 1'))) return [s, false];
    await sleep(POLL_MS);
  }
}

async function run(context, c) {
  const started = Date.now();
  const deadline = started + c.timeout * 1000;
  const page = await context.newPage();
  await page.setViewportSize({ width: 1440, height: 1000 });
  const consoleLines = [];
  const requests = [];
  page.on('console', (m) => m.type() === 'error' && consoleLines.length < 20
    && consoleLines.push(m.text().slice(0, 300)));
  page.on('pageerror', (e) => consoleLines.length < 20 && consoleLines.push(String(e).slice(0, 300)));
  page.on('request', (r) => requests.push(r.url()));
  page.on('response', (r) => r.status() >= 400 && consoleLines.length < 20
    && consoleLines.push(`HTTP ${r.status()} ${r.url()}`));
  // Every fetch seen, even of bytes an earlier case cached.
  await page.route('**/*', (route) => route.continue());
  const result = { ok: false, stage: 'play', console: consoleLines, requests };
  const finish = async (s) => {
    // A failed case is photographed too: the picture shows what went wrong.
    if (c.screenshot && !result.screenshot) {
      await page.screenshot({ path: c.screenshot, fullPage: true });
      result.screenshot = c.screenshot;
    }
    Object.assign(result, { current_time: s.time, media_keys: s.media_keys, errors: s.errors,
      pathways: s.pathways, iframes: s.iframes, seconds: (Date.now() - started) / 1000 });
    if (!result.ok) result.media = await page.evaluate(diagnose);
    return result;
  };
  try {
    await page.goto(c.url, { timeout: c.timeout * 1000 });
    let first = null;
    let [s, ok] = await until(page, deadline, (x) => {
      if (x.frames > 0 && first === null) first = x.frames;
      return x.ready && x.time >= c.advance && first !== null && x.frames > first;
    });
    result.frames = [first ?? 0, s.frames];
    if (!ok) return await finish(s);

    if (c.region) {
      result.stage = 'region';
      await page.selectOption('#region', c.region);
      const from = s.time;
      [s, ok] = await until(page, deadline, (x) => x.ready && x.time >= from + c.advance);
      if (!ok) return await finish(s);
    }

    if (c.audio) {
      result.stage = 'audio';
      requests.length = 0;
      const from = s.time;
      await page.click(`#audio button[data-audio-language="${c.audio}"]`);
      [s, ok] = await until(page, deadline, (x) => x.time >= from + 1.5
        && (!c.audio_expect || requests.some((u) => u.includes(c.audio_expect))));
      const active = await page.$$eval('#audio button.active', (bs) => bs.map((b) => b.dataset.audioLanguage));
      result.audio = { active, advanced: s.time - from,
        fetched: requests.filter((u) => c.audio_expect && u.includes(c.audio_expect)).length };
      if (!ok) return await finish(s);
    }

    if (c.trick) {
      result.stage = 'trick';
      await page.click(`#trick button[data-rate="${c.trick}"]`);
      [s, ok] = await until(page, deadline, (x) => x.iframes.length > 0);
      await page.click('#trick button[data-rate="1"]');
      if (!ok) return await finish(s);
    }

    if (c.text) {
      result.stage = 'text';
      const forced = c.text.forced ? 'yes' : 'no';
      await page.click(`#text button[data-text-language="${c.text.language}"]`
        + `[data-text-forced="${forced}"]`);
      await sleep(1000);  // shaka-player loses a text switch made in the instant of a seek
      await page.evaluate((t) => {
        const video = document.getElementById('video');
        video.pause();
        video.currentTime = t;
      }, c.cue.time);
      let text = '';
      const cueDeadline = Math.min(deadline, Date.now() + 8000);
      while (Date.now() < cueDeadline) {
        text = await page.evaluate(() => [...document.querySelectorAll('.shaka-text-container')]
          .map((box) => box.innerText).join('\n'));
        if (text.includes(c.cue.text)) break;
        await sleep(POLL_MS);
      }
      s = await sample(page);
      result.cue = { text, seek_time: s.time };
      if (!text.includes(c.cue.text)) return await finish(s);
    }

    if (c.hover !== undefined) {
      result.stage = 'hover';
      const bar = await page.$('.shaka-seek-bar-container');
      await page.hover('#player');  // the controls show on a pointer over the video
      const box = await bar.boundingBox();
      await page.mouse.move(box.x + box.width * c.hover, box.y + box.height / 2, { steps: 5 });
      let thumb = null;
      const hoverDeadline = Math.min(deadline, Date.now() + 8000);
      while (Date.now() < hoverDeadline) {
        thumb = await page.evaluate(() => {
          const container = document.querySelector('.shaka-player-ui-thumbnail-container');
          const img = document.querySelector('img.shaka-player-ui-thumbnail-image');
          const time = document.querySelector('.shaka-player-ui-thumbnail-time');
          if (!container || !img) return null;
          const r = container.getBoundingClientRect();
          return { visible: getComputedStyle(container).visibility === 'visible', src: img.src,
                   natural_width: img.naturalWidth, complete: img.complete,
                   time: time ? time.textContent : '',
                   box: { x: r.x, y: r.y, width: r.width, height: r.height } };
        });
        if (thumb && thumb.visible && thumb.natural_width > 0 && thumb.complete) break;
        await sleep(POLL_MS);
      }
      result.thumbnail = thumb;
      s = await sample(page);
      if (!(thumb && thumb.visible && thumb.natural_width > 0)) return await finish(s);
    }

    result.stage = 'done';
    result.ok = true;
    return await finish(await sample(page));
  } finally {
    await page.close();
  }
}

await serveCases(run);
