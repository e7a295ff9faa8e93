"""Packaging: source media to an encrypted CMAF ladder with HLS and DASH manifests."""
