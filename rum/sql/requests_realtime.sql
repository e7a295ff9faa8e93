-- One row per request of a CloudFront real-time log record (columns are the field names with
-- '-' as '_'): the same shape as requests_standard.sql. CloudFront's own cmcd-* fields come
-- first; the query's CMCD parameter (aggregate.sql) fills in what they lack ('-').
SELECT
  filename,
  TRY_CAST("timestamp" AS DOUBLE) AS t_end,
  TRY_CAST(time_taken AS DOUBLE) AS time_taken,
  NULLIF(c_country, '-') AS country,
  x_edge_location AS edge_location,
  cs_host AS host,
  x_host_header AS host_header,
  TRY_CAST(sc_status AS INTEGER) AS status,
  TRY_CAST(sc_bytes AS BIGINT) AS bytes,
  cs_uri_query AS query,
  NULLIF(cmcd_session_id, '-') AS rt_sid,
  NULLIF(cmcd_encoded_bitrate, '-') AS rt_br,
  NULLIF(cmcd_buffer_starvation, '-') AS rt_bs,
  NULLIF(cmcd_startup, '-') AS rt_su,
  NULLIF(cmcd_measured_throughput, '-') AS rt_mtp,
  NULLIF(cmcd_object_type, '-') AS rt_ot
FROM @SOURCE@
