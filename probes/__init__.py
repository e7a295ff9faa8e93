"""Regional delivery probes, multi-CDN scoring and CI performance gates."""
