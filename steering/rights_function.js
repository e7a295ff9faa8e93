// cdnpack rights: a CloudFront Function (runtime cloudfront-js-2.0, viewer request) that lets a
// release play only where and when it is licensed. Published by `cdnpack rights publish`; its
// data is the KeyValueStore associated with it, generated from each release's rights
// (steering/rights_data.py), never edited by hand. Keys are lower-case URL paths:
//   <release>            R1|<manifests>|<chunks>|<grants>   the release root
//   <release>|<n>        C|<grants>                         more grants (values hold 1 KB)
//   <release>/<dir>      D|<grant ids>                      a rendition directory
// <grants> is `id,start,end,COUNTRIES;...`: start and end in milliseconds, base 36 (no end:
// empty), COUNTRIES the ISO 3166-1 codes run together (JPKRTW).
// A request under a release: no CloudFront-Viewer-Country, or no grant for it now, is 451;
// the release's multivariant playlist or MPD is routed to its grant's (master.m3u8 ->
// master.grant-<id>.m3u8); a file outside the grant (a rendition above its max height, a
// language it does not license, another grant's manifest, anything else) is 403. The path is
// judged decoded, with `.`, `..`, `\` and repeated slashes resolved and case folded, and that
// canonical path is what goes on to the origin. Any other path passes untouched.
import cf from 'cloudfront';

var kvs = cf.kvs();
var MAX_DEPTH = 16; // ancestors of a path looked up for its release root

function answer(status, description) {
  return {
    statusCode: status,
    statusDescription: description,
    headers: {
      'cache-control': { value: 'no-store' },
      'access-control-allow-origin': { value: '*' },
      'content-type': { value: 'text/plain; charset=utf-8' },
    },
    body: { encoding: 'text', data: description + '\n' },
  };
}

// The path's segments, decoded and resolved; null when it cannot be decoded.
function segments(uri) {
  var text;
  try {
    text = decodeURIComponent(uri);
  } catch (e) {
    return null;
  }
  var parts = text.split('\\').join('/').split('/');
  var out = [];
  for (var i = 0; i < parts.length; i++) {
    if (parts[i] === '..') {
      out.pop();
    } else if (parts[i] !== '' && parts[i] !== '.') {
      out.push(parts[i]);
    }
  }
  return out;
}

// A key's value; null when the store has no such key. A store that fails throws (CloudFront
// then answers 503): the function fails closed.
async function value(key) {
  try {
    return await kvs.get(key);
  } catch (error) {
    if (await kvs.exists(key)) {
      throw error;
    }
    return null;
  }
}

// The grant of `entries` ("id,start,end,COUNTRIES;...") covering the country at `now`.
function grantIn(entries, country, now) {
  var list = entries ? entries.split(';') : [];
  for (var i = 0; i < list.length; i++) {
    var e = list[i].split(',');
    if (now < parseInt(e[1], 36) || (e[2] !== '' && now >= parseInt(e[2], 36))) {
      continue;
    }
    for (var at = e[3].indexOf(country); at >= 0; at = e[3].indexOf(country, at + 1)) {
      if (at % 2 === 0) {
        return e[0];
      }
    }
  }
  return null;
}

async function grantOf(rootKey, root, country, now) {
  if (!/^[A-Z]{2}$/.test(country)) {
    return null;
  }
  var fields = root.split('|');
  var grant = grantIn(fields[3], country, now);
  for (var n = 1; grant === null && n < parseInt(fields[2], 10); n++) {
    var more = await value(rootKey + '|' + n);
    if (more === null || more.slice(0, 2) !== 'C|') {
      throw new Error('rights data of ' + rootKey + ' is incomplete');
    }
    grant = grantIn(more.slice(2), country, now);
  }
  return grant;
}

function encoded(parts) {
  return '/' + parts.map(encodeURIComponent).join('/');
}

async function handler(event) {
  var request = event.request;
  var parts = segments(request.uri);
  if (parts === null) {
    return answer(400, 'Bad Request');
  }
  var lower = parts.map(function (p) { return p.toLowerCase(); });
  // The nearest ancestor that is a rendition directory or a release root.
  var depth = 0;
  var found = null;
  for (var end = lower.length - 1; end >= 0 && depth < MAX_DEPTH; end--, depth++) {
    found = await value('/' + lower.slice(0, end).join('/'));
    if (found !== null && (found.slice(0, 3) === 'R1|' || found.slice(0, 2) === 'D|')) {
      break;
    }
    found = null;
  }
  if (found === null) {
    return request;
  }
  var inDirectory = found.slice(0, 2) === 'D|';
  var rootEnd = lower.length - 1 - depth - (inDirectory ? 1 : 0);
  var rootKey = '/' + lower.slice(0, rootEnd).join('/');
  var root = inDirectory ? await value(rootKey) : found;
  if (root === null || root.slice(0, 3) !== 'R1|') {
    return answer(403, 'Forbidden');
  }
  var header = request.headers['cloudfront-viewer-country'];
  var country = header ? String(header.value).trim().toUpperCase() : '';
  var grant = await grantOf(rootKey, root, country, Date.now());
  if (grant === null) {
    return answer(451, 'Unavailable For Legal Reasons');
  }
  request.uri = encoded(parts);
  if (depth > 0) {
    return answer(403, 'Forbidden'); // nothing of a release lies deeper
  }
  if (inDirectory) {
    return found.slice(2).split(',').indexOf(grant) >= 0 ? request : answer(403, 'Forbidden');
  }
  var name = lower[lower.length - 1];
  var manifests = root.split('|')[1].split(',');
  for (var i = 0; i < manifests.length; i++) {
    var dot = manifests[i].lastIndexOf('.');
    var own = manifests[i].slice(0, dot) + '.grant-' + grant + manifests[i].slice(dot);
    if (name === manifests[i]) {
      var file = parts[parts.length - 1];
      parts[parts.length - 1] = file.slice(0, dot) + '.grant-' + grant + file.slice(dot);
      request.uri = encoded(parts);
      return request;
    }
    if (name === own) {
      return request;
    }
  }
  return answer(403, 'Forbidden');
}
