-- CloudFront real-time logs as Firehose lands them in S3: every documented field, in order,
-- '-' to '_' in the names (a configuration with fewer fields needs its own column list).
-- Every column is a string, as DuckDB reads the files: the aggregation SQL (rum/sql/) casts what
-- it needs, so a malformed value is counted by it rather than failing the query.
-- Replace BUCKET/PREFIX, then:
-- `cdnpack rum ingest s3://BUCKET/PREFIX/ --format cloudfront-realtime --engine athena --database DB --workgroup WG -o RUM.jsonl`
CREATE EXTERNAL TABLE IF NOT EXISTS cloudfront_realtime_logs (
  `timestamp` string,
  `c_ip` string,
  `time_to_first_byte` string,
  `sc_status` string,
  `sc_bytes` string,
  `cs_method` string,
  `cs_protocol` string,
  `cs_host` string,
  `cs_uri_stem` string,
  `cs_bytes` string,
  `x_edge_location` string,
  `x_edge_request_id` string,
  `x_host_header` string,
  `time_taken` string,
  `cs_protocol_version` string,
  `c_ip_version` string,
  `cs_user_agent` string,
  `cs_referer` string,
  `cs_cookie` string,
  `cs_uri_query` string,
  `x_edge_response_result_type` string,
  `x_forwarded_for` string,
  `ssl_protocol` string,
  `ssl_cipher` string,
  `x_edge_result_type` string,
  `fle_encrypted_fields` string,
  `fle_status` string,
  `sc_content_type` string,
  `sc_content_len` string,
  `sc_range_start` string,
  `sc_range_end` string,
  `c_port` string,
  `x_edge_detailed_result_type` string,
  `c_country` string,
  `cs_accept_encoding` string,
  `cs_accept` string,
  `cache_behavior_path_pattern` string,
  `cs_headers` string,
  `cs_header_names` string,
  `cs_headers_count` string,
  `primary_distribution_id` string,
  `primary_distribution_dns_name` string,
  `origin_fbl` string,
  `origin_lbl` string,
  `asn` string,
  `cmcd_encoded_bitrate` string,
  `cmcd_buffer_length` string,
  `cmcd_buffer_starvation` string,
  `cmcd_content_id` string,
  `cmcd_object_duration` string,
  `cmcd_deadline` string,
  `cmcd_measured_throughput` string,
  `cmcd_next_object_request` string,
  `cmcd_next_range_request` string,
  `cmcd_object_type` string,
  `cmcd_playback_rate` string,
  `cmcd_requested_maximum_throughput` string,
  `cmcd_streaming_format` string,
  `cmcd_session_id` string,
  `cmcd_stream_type` string,
  `cmcd_startup` string,
  `cmcd_top_bitrate` string,
  `cmcd_version` string
)
ROW FORMAT DELIMITED
  FIELDS TERMINATED BY '\t'
STORED AS TEXTFILE
LOCATION 's3://BUCKET/PREFIX/'
TBLPROPERTIES (
  'serialization.null.format' = ''
);
