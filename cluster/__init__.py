"""The Dask edge of the house: connecting to a cluster, running the packager's jobs on it, and the
storage its workers share (S3). Nothing below `cluster/` and `release/` imports Dask."""
