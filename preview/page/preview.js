// cdnpack preview: plays the release this preview serves with shaka-player's UI and shows what
// a release engineer checks before pushing it. Everything comes from /preview.json and the
// player; the keys (ClearKey table or AES-128 key) from this preview's /keys/, to this page
// only. Text from the release is always set as text, never parsed as markup.
//
// The page's state is window.cdnpackPreview (tests read it): {doc, player, ui, format, source,
// region, ready, errors, pathways (seen in fetches), iframes (I-frame playlists fetched)}.
'use strict';

const state = {
  doc: null, player: null, ui: null, format: null, source: null, region: '', keys: null,
  aesKey: false, ready: false, errors: [], pathways: [], iframes: [], pinned: null,
  textHidden: false, events: [],
};
window.cdnpackPreview = state;

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const kbps = (bps) => (bps / 1000).toLocaleString('en', { maximumFractionDigits: 0 });
const mbps = (bps) => (bps / 1e6).toFixed(2) + ' Mb/s';
const clock = (s) => {
  if (!isFinite(s)) return '-';
  const m = Math.floor(s / 60);
  return `${m}:${(s - m * 60).toFixed(1).padStart(4, '0')}`;
};

function showError(message) {
  state.errors.push(message);
  const box = $('error');
  box.hidden = false;
  box.textContent = message;
}

// --- What the release holds (static panels) -------------------------------------------------

function facts(doc) {
  const r = doc.release;
  const items = [
    `${r.formats.join(' + ').toUpperCase()}`, `${r.duration.toFixed(1)} s`,
    `${r.segment_duration} s segments`, `${r.files} files, ${(r.bytes / 1e6).toFixed(1)} MB`,
    `source ${r.source}`,
  ];
  const list = $('facts');
  list.replaceChildren(...items.map((t) => el('li', {}, t)));
  if (doc.protection) {
    list.append(el('li', { class: 'secure' }, `${doc.protection.scheme} encrypted`));
  }
  if (doc.steering) list.append(el('li', {}, `steered: ${doc.steering.pathways.length} pathways`));
  list.append(el('li', {}, `${doc.player.name} ${doc.player.version}`));
}

function vmafClass(score) {
  if (score >= 93) return 'vmaf-good';
  return score >= 80 ? 'vmaf-fair' : 'vmaf-poor';
}

function renditionsTable(doc) {
  const table = $('renditions');
  const measured = doc.renditions.video.some((v) => v.quality);
  const head = ['rendition', 'size', 'codec', 'fps', 'peak kb/s', 'avg kb/s'];
  if (measured) head.push('VMAF', 'p5');
  table.replaceChildren(el('tr', {}, head.map((h, i) => el('th', { class: i > 2 ? 'num' : '' }, h))));
  for (const v of doc.renditions.video) {
    const cells = [
      el('td', {}, v.id), el('td', {}, `${v.width}x${v.height}`), el('td', {}, v.codec),
      el('td', { class: 'num' }, v.frame_rate), el('td', { class: 'num' }, kbps(v.bandwidth)),
      el('td', { class: 'num' }, kbps(v.average_bandwidth)),
    ];
    if (measured) {
      const q = v.quality || {};
      cells.push(el('td', { class: `num ${q.vmaf != null ? vmafClass(q.vmaf) : ''}`,
                            title: q.model || '' }, q.vmaf != null ? q.vmaf.toFixed(1) : '-'));
      cells.push(el('td', { class: `num ${q.vmaf_p5 != null ? vmafClass(q.vmaf_p5) : ''}` },
                    q.vmaf_p5 != null ? q.vmaf_p5.toFixed(1) : '-'));
    }
    table.append(el('tr', { class: 'pick', 'data-rendition': v.id,
                            onclick: () => pin(v) }, cells));
  }
  const models = [...new Set(doc.renditions.video.map((v) => v.quality && v.quality.model)
    .filter(Boolean))];
  $('quality-note').textContent = measured
    ? `VMAF as measured for release.json${models.length ? ` (${models.join(', ')})` : ''}; ` +
      'click a rendition to pin it, Auto to let ABR choose.'
    : 'No measured quality in release.json (VMAF per rendition appears here when it has it). ' +
      'Click a rendition to pin it, Auto to let ABR choose.';
}

function trickPlayPanel(doc) {
  const { iframes, thumbnails } = doc.trick_play;
  const box = $('iframes');
  box.replaceChildren();
  if (iframes.length) {
    box.append(el('p', {}, `I-frame playlists (HLS): ${iframes.length}, ` +
      `${iframes[0].iframes} I-frames each`));
    const table = el('table', { class: 'grid', id: 'iframe-table' },
      el('tr', {}, el('th', {}, 'rendition'), el('th', {}, 'playlist'),
        el('th', { class: 'num' }, 'kb/s')));
    for (const i of iframes) {
      table.append(el('tr', { 'data-iframes': i.playlist }, el('td', {}, i.rendition),
        el('td', {}, el('code', {}, i.playlist)), el('td', { class: 'num' }, kbps(i.bandwidth))));
    }
    box.append(table);
  } else {
    box.append(el('p', { class: 'note' }, 'No I-frame playlists in this release.'));
  }
  const thumbs = $('thumbnails');
  thumbs.replaceChildren();
  for (const t of thumbnails) {
    thumbs.append(el('p', {}, `Thumbnails ${t.id}: one every ${t.interval} s, ${t.width}x` +
      `${t.height}, ${t.columns}x${t.rows} a sheet, ${t.sheets} sheet${t.sheets === 1 ? '' : 's'}` +
      ' (hover the seek bar)'));
    thumbs.append(el('div', { class: 'sheets' }, t.sheets_urls.map((u) => el('img', {
      src: u, alt: u, loading: 'lazy' }))));
  }
  if (!thumbnails.length) thumbs.append(el('p', { class: 'note' }, 'No thumbnails in this release.'));
}

function steeringPanel(doc) {
  const s = doc.steering;
  if (!s) return;
  $('steering-panel').hidden = false;
  const table = $('steering');
  table.replaceChildren(el('tr', {}, el('th', {}, 'region'), el('th', {}, 'pathway order'),
    el('th', {}, 'basis')));
  for (const r of s.regions) {
    const order = el('span', { class: 'order' });
    r.order.forEach((p, i) => order.append(i ? ' > ' : '', i ? p : el('b', {}, p)));
    table.append(el('tr', { 'data-region': r.region, class: 'pick', title: r.reasons.join('\n'),
      onclick: () => chooseRegion(r.region) },
      el('td', {}, r.name), el('td', {}, order), el('td', {}, r.basis)));
  }
  const bases = s.pathways.map((p) => `${p.id} ${p.base_url}`).join('; ');
  $('steering-note').textContent = s.regions.length
    ? `Pathways: ${bases}. Pick a region: the player asks for that region's order and follows it.`
    : `Pathways: ${bases}. No plan given (preview --config, --results): every region gets ` +
      `the manifests' order, ${s.default} first.`;
  const select = $('region');
  select.replaceChildren(el('option', { value: '' }, 'no region (default order)'),
    ...s.regions.map((r) => el('option', { value: r.region }, r.name)));
  $('region-group').hidden = false;
}

function protectionPanel(doc) {
  const p = doc.protection;
  if (!p) return;
  $('protection-panel').hidden = false;
  $('protection').replaceChildren(
    el('p', {}, `${p.scheme}; DRM systems signalled: ${p.systems.join(', ') || 'none'}`),
    el('p', {}, 'KIDs: ', p.kids.map((k, i) => [i ? ', ' : '', el('code', {}, k)])),
    el('p', { class: 'note' }, p.keys
      ? `Played with the keys from ${p.keys_from} (${p.delivery}), served to this page only.`
      : 'No keys: the preview cannot decrypt this release.'));
}

// --- Switches --------------------------------------------------------------------------------

function switches(doc) {
  const formats = $('formats');
  for (const fmt of Object.keys(doc.sources[doc.source])) {
    formats.append(el('button', { type: 'button', class: 'chip', 'data-format': fmt,
      onclick: () => reload({ format: fmt }) }, fmt.toUpperCase()));
  }
  const sources = Object.keys(doc.sources);
  if (sources.length > 1) {
    $('sources').hidden = false;
    const names = { local: 'release files', published: 'published CDNs' };
    for (const source of sources) {
      $('sources').append(el('button', { type: 'button', class: 'chip', 'data-source': source,
        onclick: () => reload({ source }) }, names[source] || source));
    }
  }
  $('region').addEventListener('change', (e) => chooseRegion(e.target.value));
  const trick = $('trick');
  for (const rate of [1, 4, -2]) {
    trick.append(el('button', { type: 'button', class: 'chip', 'data-rate': rate,
      onclick: () => trickPlay(rate) }, rate === 1 ? 'play' : `${rate}x`));
  }
  $('auto').addEventListener('click', () => pin(null));
}

function chooseRegion(region) {
  if (region === state.region) return;
  reload({ region });
}

function marks() {
  for (const b of document.querySelectorAll('[data-format]')) {
    b.classList.toggle('active', b.dataset.format === state.format);
  }
  for (const b of document.querySelectorAll('[data-source]')) {
    b.classList.toggle('active', b.dataset.source === state.source);
  }
  for (const r of document.querySelectorAll('#steering tr[data-region]')) {
    r.classList.toggle('chosen', r.dataset.region === state.region);
  }
  $('region').value = state.region;
  const query = new URLSearchParams({ format: state.format, from: state.source });
  if (state.region) query.set('region', state.region);
  history.replaceState(null, '', `?${query}`);
}

// --- The player -------------------------------------------------------------------------------

function matchesRendition(track, r) {
  return track.width === r.width && track.height === r.height
    && (track.videoCodec || '').split('.')[0] === r.codec.split('.')[0];
}

function pin(rendition) {
  const player = state.player;
  state.pinned = rendition ? rendition.id : null;
  player.configure({ abr: { enabled: !rendition } });
  if (rendition) {
    const audio = player.getVariantTracks().find((t) => t.active);
    const tracks = player.getVariantTracks().filter((t) => matchesRendition(t, rendition));
    const track = tracks.find((t) => !audio || t.language === audio.language) || tracks[0];
    if (track) player.selectVariantTrack(track, /* clearBuffer= */ true);
  }
  refresh();
}

function trickPlay(rate) {
  if (rate === 1) state.player.cancelTrickPlay();
  else state.player.trickPlay(rate);
  for (const b of document.querySelectorAll('[data-rate]')) {
    b.classList.toggle('active', Number(b.dataset.rate) === rate);
  }
}

function roleBadges(track) {
  const roles = track.roles || [];
  const badges = [];
  if (track.forced || roles.includes('forced-subtitle')) badges.push(['forced', 'forced']);
  if (roles.includes('caption')
      || roles.some((r) => r.includes('transcribes-spoken-dialog'))) {
    badges.push(['caption', 'captions (SDH)']);
  }
  if (roles.includes('description') || roles.some((r) => r.includes('describes-video'))) {
    badges.push(['caption', 'audio description']);
  }
  for (const r of roles) {
    if (['main', 'dub', 'alternate', 'subtitle'].includes(r)) badges.push(['', r]);
  }
  return badges.map(([cls, text]) => el('span', { class: `badge ${cls}` }, text));
}

// The menu name release.json gives a track (its language's own name, "(forced)", "(SDH)"):
// DASH has no label for shaka-player to show.
function releaseName(kind, track) {
  const roles = track.roles || [];
  const named = state.doc.renditions[kind].filter((r) => r.language === track.language);
  const best = named.find((r) => roles.includes(r.role)) || (named.length === 1 ? named[0] : null);
  return (best && best.name) || track.label || track.language;
}

function trackChips() {
  const player = state.player;
  const audio = player.getAudioTracks();
  $('audio').replaceChildren(...audio.map((t) => el('button', {
    type: 'button', class: `chip${t.active ? ' active' : ''}`, 'data-audio-language': t.language,
    'data-audio-role': (t.roles || []).join(' '),
    onclick: () => { player.selectAudioTrack(t); refresh(); },
  }, releaseName('audio', t), el('span', { class: 'badge' }, t.language),
  t.channelsCount ? el('span', { class: 'badge' }, `${t.channelsCount}ch`) : null,
  roleBadges(t))));
  // shaka-player 5 shows a text track when it is selected, hides text when none is.
  const text = player.getTextTracks();
  const showing = !state.textHidden && text.some((t) => t.active);
  const off = el('button', { type: 'button', class: `chip${showing ? '' : ' active'}`,
    'data-text-language': '', onclick: () => {
      state.textHidden = true;
      player.selectTextTrack(null);
      refresh();
    },
  }, 'Off');
  $('text').replaceChildren(off, ...text.map((t) => el('button', {
    type: 'button', class: `chip${t.active && showing ? ' active' : ''}`,
    'data-text-language': t.language, 'data-text-forced': t.forced ? 'yes' : 'no',
    'data-text-role': (t.roles || []).join(' '),
    onclick: () => {
      state.textHidden = false;
      player.selectTextTrack(t);
      refresh();
    },
  }, releaseName('text', t), el('span', { class: 'badge' }, t.language), roleBadges(t))));
}

function pathwayOf(uri) {
  const s = state.doc.steering;
  if (!s) return null;
  const url = new URL(uri, location.href);
  for (const p of s.pathways) {
    if (url.pathname.startsWith(p.local) && url.origin === location.origin) return p.id;
    if (url.href.startsWith(p.base_url)) return p.id;
  }
  return null;
}

function refresh() {
  const player = state.player;
  const video = $('video');
  const variant = player.getVariantTracks().find((t) => t.active);
  const doc = state.doc;
  const rendition = variant && doc.renditions.video.find((r) => matchesRendition(variant, r));
  for (const row of document.querySelectorAll('#renditions tr[data-rendition]')) {
    row.classList.toggle('playing', !!rendition && row.dataset.rendition === rendition.id);
    row.classList.toggle('pinned', row.dataset.rendition === state.pinned);
  }
  trackChips();
  const quality = video.getVideoPlaybackQuality();
  const stats = player.getStats();
  const text = player.getTextTracks().find((t) => t.active);
  const rows = [
    ['time', `${clock(video.currentTime)} / ${clock(video.duration)}`],
    ['rendition', rendition ? `${rendition.id} ${rendition.width}x${rendition.height}` : '-'],
    ['bitrate', variant ? mbps(variant.bandwidth) : '-'],
    ['estimate', isFinite(stats.estimatedBandwidth) ? mbps(stats.estimatedBandwidth) : '-'],
    ['audio', variant ? `${variant.language || '-'} ${(variant.audioRoles || []).join(' ')}` : '-'],
    ['subtitles', text && !state.textHidden ? `${text.language} ${text.label || ''}` : 'off'],
    ['frames', `${quality.totalVideoFrames} decoded, ${quality.droppedVideoFrames} dropped`],
    ['keys', video.mediaKeys ? 'ClearKey (EME)' : state.aesKey ? 'AES-128 key' : 'clear'],
  ];
  if (doc.steering) {
    rows.push(['pathway', state.pathways.length ? state.pathways[state.pathways.length - 1] : '-']);
    rows.push(['region', state.region || 'none (default order)']);
  }
  $('now').replaceChildren(...rows.flatMap(([k, v]) => [el('dt', {}, k),
    el('dd', { 'data-now': k }, v)]));
  marks();
}

async function fetchKeys(doc) {
  const p = doc.protection;
  if (!p || !p.keys) return;
  if (p.delivery !== 'clearkey') {
    state.aesKey = true;  // the player fetches it itself, as from a key server (filters below)
    return;
  }
  const answer = await fetch(p.keys, { cache: 'no-store' });
  if (!answer.ok) throw new Error(`keys: HTTP ${answer.status}`);
  state.keys = await answer.json();
}

function filters(player) {
  const net = player.getNetworkingEngine();
  const Type = shaka.net.NetworkingEngine.RequestType;
  const aes = state.doc.protection && state.doc.protection.delivery === 'aes-128 key';
  net.registerRequestFilter((type, request) => {
    if (type === Type.CONTENT_STEERING && state.region) {
      request.uris = request.uris.map((u) => {
        const url = new URL(u, location.href);
        url.searchParams.set('region', state.region);
        return url.href;
      });
    }
    // An AES-128 release names the key server players use once it is pushed; played here,
    // the key comes from this preview, which read it from the keystore.
    if (type === Type.KEY && aes) request.uris = [new URL(state.doc.protection.keys, location.href).href];
  });
  net.registerResponseFilter((type, response) => {
    if (type === Type.SEGMENT) {
      const pathway = pathwayOf(response.uri);
      if (pathway && state.pathways[state.pathways.length - 1] !== pathway) {
        state.pathways.push(pathway);
      }
    }
    if (response.uri.includes('iframes.m3u8') && !state.iframes.includes(response.uri)) {
      state.iframes.push(response.uri);
      for (const row of document.querySelectorAll('#iframe-table tr[data-iframes]')) {
        if (response.uri.endsWith(row.dataset.iframes)) row.classList.add('playing');
      }
    }
  });
}

async function reload(change) {
  const video = $('video');
  const at = state.player && state.ready ? video.currentTime : null;
  Object.assign(state, change);
  state.ready = false;
  await load(at);
}

async function load(startTime) {
  const player = state.player;
  // Absolute: shaka-player resolves every playlist URI against the one it was given.
  const url = new URL(state.doc.sources[state.source][state.format], location.href).href;
  // ClearKey from this preview stands in for the release's DRM systems. An HLS release's
  // ClearKey signalling (EXT-X-SESSION-KEY KEYFORMAT="identity") gives shaka-player a key ID of
  // zeros, which no key status ever names: with `clearKeys` set it then restricts every variant
  // whose media playlist it has not read yet, and an early ABR switch to one, undone, left the
  // video unbuffered in about one start in four. The keys given here are the release's own,
  // so the playlists' key lines are not needed to play it.
  const clearKeys = state.keys || {};
  player.configure({
    drm: { clearKeys },
    manifest: { ignoreDrmInfo: state.format === 'hls' && Object.keys(clearKeys).length > 0 },
    abr: { enabled: !state.pinned },
  });
  marks();
  try {
    await player.load(url, startTime);
  } catch (e) {
    showError(`could not load ${url}: shaka error ${e.code} (category ${e.category})`);
    return;
  }
  $('error').hidden = true;
  state.ready = true;
  playVideo();
  refresh();
}

function playVideo() {
  $('video').play().catch((e) => state.errors.push(`play: ${e.message}`));
}

async function main() {
  const doc = await (await fetch('/preview.json', { cache: 'no-store' })).json();
  state.doc = doc;
  const params = new URLSearchParams(location.search);
  const formats = Object.keys(doc.sources[doc.source]);
  state.source = doc.sources[params.get('from')] ? params.get('from') : doc.source;
  state.format = formats.includes(params.get('format')) ? params.get('format') : formats[0];
  const regions = doc.steering ? doc.steering.regions.map((r) => r.region) : [];
  state.region = regions.includes(params.get('region')) ? params.get('region') : '';
  $('title').textContent = doc.title;
  document.title = `cdnpack preview: ${doc.title}`;
  facts(doc);
  renditionsTable(doc);
  trickPlayPanel(doc);
  steeringPanel(doc);
  protectionPanel(doc);
  switches(doc);
  try {
    await fetchKeys(doc);
  } catch (e) {
    showError(e.message);
    return;
  }
  shaka.polyfill.installAll();
  if (!shaka.Player.isBrowserSupported()) {
    showError('This browser cannot play with shaka-player (no Media Source Extensions).');
    return;
  }
  const video = $('video');
  // The media element's story, newest last (tests print it when playback does not start).
  for (const name of ['loadedmetadata', 'canplay', 'playing', 'waiting', 'stalled', 'seeking',
                      'seeked', 'waitingforkey', 'encrypted', 'pause', 'ended', 'error']) {
    video.addEventListener(name, () => {
      state.events.push(`${video.currentTime.toFixed(2)} ${name}`);
      if (state.events.length > 100) state.events.shift();
    });
  }
  const player = new shaka.Player();
  await player.attach(video);
  state.player = player;
  state.ui = new shaka.ui.Overlay(player, $('player'), video);
  state.ui.configure({ castReceiverAppId: '', enableTooltips: true });
  player.addEventListener('error', (e) => {
    const d = e.detail;
    const message = `shaka error ${d.code} (category ${d.category}, severity ${d.severity}): `
      + JSON.stringify(d.data).slice(0, 300);
    if (d.severity === shaka.util.Error.Severity.CRITICAL) showError(message);
    else state.errors.push(message);
  });
  for (const event of ['adaptation', 'variantchanged', 'trackschanged', 'textchanged',
                       'texttrackvisibility']) {
    player.addEventListener(event, refresh);
  }
  filters(player);
  setInterval(() => state.ready && refresh(), 500);
  await load(null);
}

document.addEventListener('DOMContentLoaded', () => {
  main().catch((e) => showError(`preview failed: ${e.message || e}`));
});
