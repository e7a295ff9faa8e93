// cdnpack steer publish: a CloudFront Function (runtime cloudfront-js-2.0, viewer request)
// that answers each viewer with its region's static steering document. Generated from the
// config by `cdnpack steer publish`; edit regions.yaml and publish again rather than this.
//
// .../hls.json and .../dash.json become .../hls/<region>.json and .../dash/<region>.json:
// the region named by ?region= if it is one of ours, else the region whose countries list
// the CloudFront-Viewer-Country header (add that header to the behaviour's origin request
// policy), else the audience-weighted overall document.
var COUNTRIES = __COUNTRIES__;
var REGIONS = __REGIONS__;
var ENABLED = __ENABLED__;
var OVERALL = __OVERALL__;
var DOCUMENT = /\/(hls|dash)\.json$/;

function regionOf(request) {
  var named = request.querystring.region;
  if (named && REGIONS.indexOf(named.value) >= 0) {
    return named.value;
  }
  var header = request.headers['cloudfront-viewer-country'];
  if (header) {
    var code = String(header.value).trim().toUpperCase();
    if (Object.prototype.hasOwnProperty.call(COUNTRIES, code)) {
      return COUNTRIES[code];
    }
  }
  return OVERALL;
}

function handler(event) {
  var request = event.request;
  var match = DOCUMENT.exec(request.uri);
  if (!match) {
    return request;
  }
  if (!ENABLED) {
    return {
      statusCode: 410,
      statusDescription: 'Gone',
      headers: {
        'cache-control': { value: 'no-store' },
        'access-control-allow-origin': { value: '*' },
      },
    };
  }
  request.uri = request.uri.slice(0, match.index) + '/' + match[1] + '/' + regionOf(request) +
    '.json';
  return request;
}
