"""CloudFront's two access-log formats: field names in their documented order, and file names.

Standard logs (legacy), "Log file fields" of the CloudFront Developer Guide
(https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/standard-logs-reference.html
#BasicDistributionFileFormat): 33 tab-separated fields in a fixed order, each file headed by
`#Version: 1.0` and `#Fields: date time ...`, gzip files named
`<prefix>/<distribution-id>.YYYY-MM-DD-HH.<unique-id>.gz`. `date`/`time` are UTC and mark when
the edge finished the response (whole seconds); `time-taken` is seconds from request to last
byte (ms precision); `cs(Host)` is the distribution's domain (d111111abcdef8.cloudfront.net),
`x-host-header` the viewer's Host; `cs-uri-query` and `cs(User-Agent)` are URL-encoded; a
missing value is `-`. Standard logs carry no country: the edge location (`NRT57-P1`) says where.

Real-time logs, "Real-time log configuration fields"
(https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/real-time-logs.html
#understand-real-time-log-config-fields): the fields chosen in the configuration, tab-separated,
in the documented order, one record per line, no header (Kinesis Data Streams, usually landed
in S3 by Firehose). `timestamp` is epoch seconds with milliseconds; `c-country` is the viewer's
ISO 3166-1 alpha-2 country; the `cmcd-*` fields are CloudFront's own parse of the request's
CMCD (query or headers).
"""

from __future__ import annotations

import re

STANDARD = "cloudfront-standard"
REALTIME = "cloudfront-realtime"
FORMATS = (STANDARD, REALTIME)

#: The 33 fields of a standard log line, in order.
STANDARD_FIELDS = (
    "date", "time", "x-edge-location", "sc-bytes", "c-ip", "cs-method", "cs(Host)",
    "cs-uri-stem", "sc-status", "cs(Referer)", "cs(User-Agent)", "cs-uri-query", "cs(Cookie)",
    "x-edge-result-type", "x-edge-request-id", "x-host-header", "cs-protocol", "cs-bytes",
    "time-taken", "x-forwarded-for", "ssl-protocol", "ssl-cipher",
    "x-edge-response-result-type", "cs-protocol-version", "fle-status", "fle-encrypted-fields",
    "c-port", "time-to-first-byte", "x-edge-detailed-result-type", "sc-content-type",
    "sc-content-len", "sc-range-start", "sc-range-end",
)
#: The column names AWS's own Athena table for standard logs uses (same order): the names a
#: user's Glue catalog already has, so the aggregation SQL reads either.
STANDARD_COLUMNS = (
    "date", "time", "location", "bytes", "request_ip", "method", "host", "uri", "status",
    "referrer", "user_agent", "query_string", "cookie", "result_type", "request_id",
    "host_header", "request_protocol", "request_bytes", "time_taken", "xforwarded_for",
    "ssl_protocol", "ssl_cipher", "response_result_type", "http_version", "fle_status",
    "fle_encrypted_fields", "c_port", "time_to_first_byte", "x_edge_detailed_result_type",
    "sc_content_type", "sc_content_len", "sc_range_start", "sc_range_end",
)
STANDARD_HEADER = "#Version: 1.0\n#Fields: " + " ".join(STANDARD_FIELDS) + "\n"

#: Every real-time log field, in the documented order (a configuration picks a subset).
REALTIME_FIELDS = (
    "timestamp", "c-ip", "time-to-first-byte", "sc-status", "sc-bytes", "cs-method",
    "cs-protocol", "cs-host", "cs-uri-stem", "cs-bytes", "x-edge-location", "x-edge-request-id",
    "x-host-header", "time-taken", "cs-protocol-version", "c-ip-version", "cs-user-agent",
    "cs-referer", "cs-cookie", "cs-uri-query", "x-edge-response-result-type",
    "x-forwarded-for", "ssl-protocol", "ssl-cipher", "x-edge-result-type",
    "fle-encrypted-fields", "fle-status", "sc-content-type", "sc-content-len",
    "sc-range-start", "sc-range-end", "c-port", "x-edge-detailed-result-type", "c-country",
    "cs-accept-encoding", "cs-accept", "cache-behavior-path-pattern", "cs-headers",
    "cs-header-names", "cs-headers-count", "primary-distribution-id",
    "primary-distribution-dns-name", "origin-fbl", "origin-lbl", "asn",
    "cmcd-encoded-bitrate", "cmcd-buffer-length", "cmcd-buffer-starvation", "cmcd-content-id",
    "cmcd-object-duration", "cmcd-deadline", "cmcd-measured-throughput",
    "cmcd-next-object-request", "cmcd-next-range-request", "cmcd-object-type",
    "cmcd-playback-rate", "cmcd-requested-maximum-throughput", "cmcd-streaming-format",
    "cmcd-session-id", "cmcd-stream-type", "cmcd-startup", "cmcd-top-bitrate", "cmcd-version",
)
#: The CMCD key behind each `cmcd-*` real-time field (CTA-5004 Table 1).
REALTIME_CMCD = {
    "cmcd-encoded-bitrate": "br", "cmcd-buffer-length": "bl", "cmcd-buffer-starvation": "bs",
    "cmcd-content-id": "cid", "cmcd-object-duration": "d", "cmcd-deadline": "dl",
    "cmcd-measured-throughput": "mtp", "cmcd-next-object-request": "nor",
    "cmcd-next-range-request": "nrr", "cmcd-object-type": "ot", "cmcd-playback-rate": "pr",
    "cmcd-requested-maximum-throughput": "rtp", "cmcd-streaming-format": "sf",
    "cmcd-session-id": "sid", "cmcd-stream-type": "st", "cmcd-startup": "su",
    "cmcd-top-bitrate": "tb", "cmcd-version": "v",
}
#: Fields the aggregation needs from a real-time configuration.
REALTIME_REQUIRED = ("timestamp", "sc-status", "sc-bytes", "time-taken", "x-edge-location")

#: `<distribution-id>.YYYY-MM-DD-HH.<unique-id>.gz` (the prefix, if any, is a directory).
STANDARD_FILE_NAME = re.compile(
    r"^(?P<distribution>[A-Z0-9]+)\.(?P<hour>\d{4}-\d{2}-\d{2}-\d{2})\.(?P<unique>[0-9a-f]+)"
    r"\.gz$")


def column(field: str) -> str:
    """SQL column name of a real-time field (`cmcd-session-id` -> `cmcd_session_id`)."""
    return field.replace("-", "_")


def standard_file_name(distribution: str, hour: str, unique: str) -> str:
    """The name CloudFront gives a standard log file; `hour` is `YYYY-MM-DD-HH` (UTC)."""
    return f"{distribution}.{hour}.{unique}.gz"
