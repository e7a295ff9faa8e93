"""Content steering: the probes' per-region CDN ranking turned into the pathway order players
follow (HLS RFC 8216bis §7, DASH-IF CTS 001), served live or published as static documents."""
