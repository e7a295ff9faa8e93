"""DRM signalling: per-system pssh boxes and the HLS/DASH key attributes."""
