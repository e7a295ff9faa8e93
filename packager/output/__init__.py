"""Output: CMAF segments, HLS and DASH manifests, release.json, the package job."""
