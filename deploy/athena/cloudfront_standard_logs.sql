-- CloudFront standard logs: the 33 fields in the documented order, named as AWS's own Athena
-- table names them (the two #Version/#Fields header lines are skipped; gzip is read as is).
-- Every column is a string, as DuckDB reads the files: the aggregation SQL (rum/sql/) casts what
-- it needs, so a malformed value is counted by it rather than failing the query.
-- Replace BUCKET/PREFIX, then:
-- `cdnpack rum ingest s3://BUCKET/PREFIX/ --format cloudfront-standard --engine athena --database DB --workgroup WG -o RUM.jsonl`
CREATE EXTERNAL TABLE IF NOT EXISTS cloudfront_standard_logs (
  `date` string,
  `time` string,
  `location` string,
  `bytes` string,
  `request_ip` string,
  `method` string,
  `host` string,
  `uri` string,
  `status` string,
  `referrer` string,
  `user_agent` string,
  `query_string` string,
  `cookie` string,
  `result_type` string,
  `request_id` string,
  `host_header` string,
  `request_protocol` string,
  `request_bytes` string,
  `time_taken` string,
  `xforwarded_for` string,
  `ssl_protocol` string,
  `ssl_cipher` string,
  `response_result_type` string,
  `http_version` string,
  `fle_status` string,
  `fle_encrypted_fields` string,
  `c_port` string,
  `time_to_first_byte` string,
  `x_edge_detailed_result_type` string,
  `sc_content_type` string,
  `sc_content_len` string,
  `sc_range_start` string,
  `sc_range_end` string
)
ROW FORMAT DELIMITED
  FIELDS TERMINATED BY '\t'
STORED AS TEXTFILE
LOCATION 's3://BUCKET/PREFIX/'
TBLPROPERTIES (
  'skip.header.line.count' = '2',
  'serialization.null.format' = ''
);
