"""Pushing a packaged release to an S3 origin behind CloudFront."""
