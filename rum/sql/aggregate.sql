-- Real-viewer QoE per (region, CDN, hour) from CDN log requests, plus one row per log file.
-- One text for DuckDB (embedded) and Amazon Athena (Trino): only functions both have, or that
-- rum/ingest.py defines in DuckDB under Trino's name (to_unixtime, approx_percentile).
-- Placeholders: @REGION_MAP@ and @CDN_MAP@ (VALUES rows), @DEFAULT_CDN@ (a literal or NULL),
-- @REQUESTS@ (requests_standard.sql or requests_realtime.sql over the log table).
WITH
region_map (kind, code, region) AS (VALUES @REGION_MAP@),
cdn_map (host, cdn) AS (VALUES @CDN_MAP@),
raw AS (@REQUESTS@),
-- The CMCD payload: the query's URL-encoded CMCD parameter (CTA-5004 section 2.3). Its keys
-- (CTA-5004 Table 1), found with plain string search (strpos, split_part: a tenth of
-- a regular expression's cost): in ',' || payload || ',' a key starts after a comma and its
-- value ends at the next one; a string value (sid) is quoted and ends at its closing quote; a
-- boolean is true as the bare key (or `?1` in Structured Field syntax). A comma inside an
-- earlier quoted value could hide a key: players quote only ids and URLs, which have none.
payload AS (
  SELECT r.*,
    CASE WHEN strpos(concat('&', r.query), '&CMCD=') > 0
         THEN url_decode(split_part(substr(concat('&', r.query),
                                           strpos(concat('&', r.query), '&CMCD=') + 6), '&', 1))
    END AS cmcd
  FROM raw r
),
framed AS (
  SELECT p.*, concat(',', p.cmcd, ',') AS c FROM payload p
),
keyed AS (
  SELECT
    filename, t_end, time_taken, country, edge_location, host, host_header, status, bytes,
    COALESCE(rt_sid,
      CASE WHEN strpos(c, ',sid="') > 0
           THEN split_part(substr(c, strpos(c, ',sid="') + 6), '"', 1)
           WHEN strpos(c, ',sid=') > 0
           THEN split_part(substr(c, strpos(c, ',sid=') + 5), ',', 1) END) AS sid_raw,
    COALESCE(rt_br, CASE WHEN strpos(c, ',br=') > 0
      THEN split_part(substr(c, strpos(c, ',br=') + 4), ',', 1) END) AS br_raw,
    COALESCE(rt_mtp, CASE WHEN strpos(c, ',mtp=') > 0
      THEN split_part(substr(c, strpos(c, ',mtp=') + 5), ',', 1) END) AS mtp_raw,
    COALESCE(rt_ot, CASE WHEN strpos(c, ',ot=') > 0
      THEN split_part(substr(c, strpos(c, ',ot=') + 4), ',', 1) END) AS ot,
    COALESCE(rt_bs, CASE WHEN strpos(c, ',bs,') > 0 OR strpos(c, ',bs=?1,') > 0 THEN 'true'
      END) AS bs_raw,
    COALESCE(rt_su, CASE WHEN strpos(c, ',su,') > 0 OR strpos(c, ',su=?1,') > 0 THEN 'true'
      END) AS su_raw
  FROM framed
),
requests AS (
  SELECT
    k.filename,
    COALESCE(rc.region, re.region, 'unknown') AS region,
    COALESCE(@DEFAULT_CDN@, ch.cdn, cx.cdn, k.host_header, k.host, 'unknown') AS cdn,
    floor(k.t_end / 3600) * 3600 AS hour,
    k.t_end,
    k.t_end - COALESCE(k.time_taken, 0) AS t_start,
    k.time_taken,
    k.status,
    k.bytes,
    NULLIF(trim(BOTH '"' FROM k.sid_raw), '') AS sid,
    TRY_CAST(k.br_raw AS BIGINT) AS br,
    TRY_CAST(k.mtp_raw AS BIGINT) AS mtp,
    k.ot,
    COALESCE(k.bs_raw NOT IN ('0', 'false'), false) AS bs,
    COALESCE(k.su_raw NOT IN ('0', 'false'), false) AS su,
    (CASE WHEN k.br_raw IS NOT NULL AND COALESCE(TRY_CAST(k.br_raw AS BIGINT), -1) < 0
          THEN 1 ELSE 0 END)
    + (CASE WHEN k.mtp_raw IS NOT NULL AND COALESCE(TRY_CAST(k.mtp_raw AS BIGINT), -1) < 0
            THEN 1 ELSE 0 END)
    + (CASE WHEN k.ot IS NOT NULL AND k.ot NOT IN ('m', 'a', 'v', 'av', 'i', 'c', 'tt', 'k', 'o')
            THEN 1 ELSE 0 END) AS bad_cmcd,
    CASE WHEN k.t_end IS NULL OR k.status IS NULL THEN 1 ELSE 0 END AS unreadable
  FROM keyed k
  LEFT JOIN region_map rc ON rc.kind = 'country' AND rc.code = upper(k.country)
  LEFT JOIN region_map re ON re.kind = 'edge' AND re.code = upper(substr(k.edge_location, 1, 3))
  LEFT JOIN cdn_map ch ON ch.host = k.host_header
  LEFT JOIN cdn_map cx ON cx.host = k.host
),
-- One pass over the requests feeds two groupings: viewer sessions (a session id within a
-- region, CDN and hour; requests without CMCD form a group of their own, sid NULL) and files.
stage AS (
  SELECT
    GROUPING(filename) AS per_session,
    filename, region, cdn, hour, sid,
    count(*) AS requests,
    sum(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS errors,
    sum(COALESCE(bytes, 0)) AS bytes,
    -- startup: first request sent -> last startup (`su`) object delivered
    max(CASE WHEN su THEN t_end END) - min(t_start) AS startup,
    max(CASE WHEN bs THEN 1 ELSE 0 END) AS rebuffered,
    sum(CASE WHEN bs THEN 1 ELSE 0 END) AS starved,
    sum(CASE WHEN ot IN ('v', 'av') THEN 1 ELSE 0 END) AS media,
    avg(CAST(mtp AS DOUBLE)) AS mtp,
    -- what the edge delivered video at: bytes over time-taken (the CDN's own measure, for
    -- players that report no mtp)
    8 * sum(CASE WHEN ot IN ('v', 'av') AND time_taken > 0 THEN CAST(bytes AS DOUBLE) END)
      / sum(CASE WHEN ot IN ('v', 'av') AND time_taken > 0 THEN time_taken END) AS delivered,
    avg(CASE WHEN ot IN ('v', 'av') THEN CAST(br AS DOUBLE) END) AS bitrate,
    sum(bad_cmcd) AS bad_cmcd,
    sum(unreadable) AS unreadable
  FROM requests
  GROUP BY GROUPING SETS ((region, cdn, hour, sid), (filename))
)
SELECT
  'cell' AS kind, CAST(NULL AS VARCHAR) AS filename, region, cdn, hour,
  count(sid) AS sessions,
  sum(requests) AS requests,
  sum(errors) AS errors,
  sum(bytes) AS bytes,
  CAST(approx_percentile(startup, 0.5) AS DOUBLE) AS startup_p50,
  CAST(approx_percentile(startup, 0.95) AS DOUBLE) AS startup_p95,
  sum(starved) AS starved,
  sum(media) AS media,
  sum(CASE WHEN sid IS NOT NULL THEN rebuffered ELSE 0 END) AS rebuffering_sessions,
  CAST(approx_percentile(mtp, 0.5) AS DOUBLE) AS mtp_p50,
  CAST(approx_percentile(delivered, 0.5) AS DOUBLE) AS throughput_p50,
  CAST(avg(bitrate) AS DOUBLE) AS bitrate,
  sum(bad_cmcd) AS bad_cmcd,
  sum(unreadable) AS unreadable
FROM stage
WHERE per_session = 1
GROUP BY region, cdn, hour
UNION ALL
SELECT
  'file', filename, CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR), CAST(NULL AS DOUBLE),
  CAST(0 AS BIGINT), requests, errors, bytes, CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE),
  starved, media, CAST(0 AS BIGINT), CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE),
  CAST(NULL AS DOUBLE), bad_cmcd, unreadable
FROM stage
WHERE per_session = 0
