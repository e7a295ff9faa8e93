-- One row per request of a CloudFront standard log (columns as AWS's Athena table names them,
-- every one read as text): the time the edge finished (whole seconds), the request's duration,
-- where it was served, for which host, its status and bytes, and its query (where the CMCD
-- parameter is, CTA-5004 section 2.3).
SELECT
  filename,
  to_unixtime(TRY_CAST(concat(CAST("date" AS VARCHAR), ' ', "time") AS TIMESTAMP)) AS t_end,
  TRY_CAST(time_taken AS DOUBLE) AS time_taken,
  CAST(NULL AS VARCHAR) AS country,
  location AS edge_location,
  host,
  host_header,
  TRY_CAST(status AS INTEGER) AS status,
  TRY_CAST(bytes AS BIGINT) AS bytes,
  query_string AS query,
  CAST(NULL AS VARCHAR) AS rt_sid, CAST(NULL AS VARCHAR) AS rt_br,
  CAST(NULL AS VARCHAR) AS rt_bs, CAST(NULL AS VARCHAR) AS rt_su,
  CAST(NULL AS VARCHAR) AS rt_mtp, CAST(NULL AS VARCHAR) AS rt_ot
FROM @SOURCE@
